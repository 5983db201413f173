//! The HTML pages: the supernode's status page and the edge's small page. One document each,
//! inline CSS, no scripts, no external assets; every value from a snapshot goes through
//! [`escape`].

use std::fmt::Write;

use crate::snapshot::{EdgeSnapshot, EdgeView, SupernodeSnapshot};

/// The status page lists at most this many edges (over all communities); the rest are
/// counted in a "not shown" line. Bounds the page (≈ 0.5 KiB per row) however many edges
/// register.
pub const MAX_EDGES_LISTED: usize = 2000;

/// At most this many communities get a section on the status page.
pub const MAX_COMMUNITIES_LISTED: usize = 500;

/// At most this many federation supernodes are listed.
pub const MAX_SUPERNODES_LISTED: usize = 200;

/// HTML-escapes `text` for element content and quoted attribute values: `& < > " '` become
/// entities and control characters (which HTML forbids or which could disguise text)
/// become U+FFFD.
#[must_use]
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// MAC in C n2n's notation (upper case, colons).
#[must_use]
pub fn mac_text(mac: &[u8; 6]) -> String {
    let [a, b, c, d, e, f] = mac;
    format!("{a:02X}:{b:02X}:{c:02X}:{d:02X}:{e:02X}:{f:02X}")
}

/// "12 s ago", "3 min ago", "2 h ago", "4 d ago"; "never" for 0.
#[must_use]
pub fn ago(now: u64, then: u64) -> String {
    if then == 0 {
        return "never".into();
    }
    let d = now.saturating_sub(then);
    match d {
        0..120 => format!("{d} s ago"),
        120..7200 => format!("{} min ago", d / 60),
        7200..172_800 => format!("{} h ago", d / 3600),
        _ => format!("{} d ago", d / 86_400),
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
#[must_use]
pub fn utc_text(unix: u64) -> String {
    let t = n2n_sys::log::LocalTime::utc(i64::try_from(unix).unwrap_or(i64::MAX));
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC",
        t.year, t.month, t.day, t.hour, t.minute, t.second
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222;background:#fafafa}\
h1{font-size:1.4em;margin:0 0 .3em}h2{font-size:1.1em;margin:1.4em 0 .4em}\
.meta{color:#555;margin:0 0 1em}table{border-collapse:collapse;background:#fff;min-width:40em}\
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}\
th{background:#e8eef4}td.num{text-align:right;font-variant-numeric:tabular-nums}\
code{font-family:ui-monospace,monospace}.none{color:#777;font-style:italic}\
td.share{white-space:nowrap}.bar{display:inline-block;height:.7em;background:#4a8;margin-right:.4em;vertical-align:middle}\
.summary td{border:none;padding:.1em .8em .1em 0}";

fn head(out: &mut String, title: &str) {
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>{}</title><style>{STYLE}</style></head><body>\n",
        escape(title)
    );
}

fn share_cell(out: &mut String, e: &EdgeView) {
    match e.p2p_share() {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(share) => {
            let pct = (share * 100.0).round() as u32;
            let _ = write!(
                out,
                "<td class=\"share\"><span class=\"bar\" style=\"width:{w}px\"></span>{pct} % P2P</td>",
                w = pct / 2
            );
        }
        None => out.push_str("<td class=\"none\">unknown</td>"),
    }
}

/// The supernode's status page: per community its edges (MAC, overlay IP, description,
/// public socket, last seen, relayed packets, P2P share) and the federation's supernodes.
#[must_use]
pub fn status_page(s: &SupernodeSnapshot) -> String {
    let mut out = String::with_capacity(4096);
    head(&mut out, "n2n supernode status");
    let edges: usize = s.communities.iter().map(|c| c.edges.len()).sum();
    let fwd: u64 = s.forwarded.iter().map(|(_, n)| n).sum();
    let drops: u64 = s.drops.iter().map(|(_, n)| n).sum();
    let _ = write!(
        out,
        "<h1>n2n supernode</h1>\n<p class=\"meta\">version {} &middot; {}</p>\n\
         <table class=\"summary\"><tr><td>communities</td><td class=\"num\" id=\"communities\">{}</td></tr>\
         <tr><td>edges</td><td class=\"num\" id=\"edges\">{edges}</td></tr>\
         <tr><td>federation supernodes</td><td class=\"num\">{}</td></tr>\
         <tr><td>packets forwarded</td><td class=\"num\">{fwd}</td></tr>\
         <tr><td>datagrams dropped</td><td class=\"num\">{drops}</td></tr></table>\n",
        escape(&s.version),
        utc_text(s.now_unix),
        s.communities.len(),
        s.federation.len(),
    );
    let mut budget = MAX_EDGES_LISTED;
    let mut hidden_edges = 0usize;
    for c in s.communities.iter().take(MAX_COMMUNITIES_LISTED) {
        let _ = writeln!(
            out,
            "<h2>community <code>{}</code> ({} edge{})</h2>",
            escape(&c.name),
            c.edges.len(),
            if c.edges.len() == 1 { "" } else { "s" }
        );
        if c.edges.is_empty() {
            out.push_str("<p class=\"none\">no edges registered</p>\n");
            continue;
        }
        out.push_str(
            "<table class=\"edges\"><tr><th>MAC</th><th>overlay IP</th><th>description</th>\
             <th>public socket</th><th>last seen</th><th>relayed packets</th><th>P2P share</th></tr>\n",
        );
        let shown = c.edges.len().min(budget);
        for e in c.edges.iter().take(shown) {
            let ip = e
                .ip4addr
                .map(|(a, n)| format!("{a}/{n}"))
                .unwrap_or_default();
            let _ = write!(
                out,
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td>\
                 <td><code>{}</code></td><td title=\"{}\">{}</td><td class=\"num\">{}</td>",
                mac_text(&e.mac),
                escape(&ip),
                escape(&e.desc),
                escape(&e.sockaddr.to_string()),
                utc_text(e.last_seen_unix),
                ago(s.now_unix, e.last_seen_unix),
                e.relayed_packets,
            );
            share_cell(&mut out, e);
            out.push_str("</tr>\n");
        }
        out.push_str("</table>\n");
        budget -= shown;
        hidden_edges += c.edges.len() - shown;
    }
    let hidden_communities = s.communities.len().saturating_sub(MAX_COMMUNITIES_LISTED);
    if hidden_communities > 0 {
        hidden_edges += s
            .communities
            .iter()
            .skip(MAX_COMMUNITIES_LISTED)
            .map(|c| c.edges.len())
            .sum::<usize>();
    }
    if hidden_communities > 0 || hidden_edges > 0 {
        let _ = writeln!(
            out,
            "<p class=\"none\">not shown: {hidden_communities} communities, {hidden_edges} edges \
             (the page lists at most {MAX_COMMUNITIES_LISTED} communities and {MAX_EDGES_LISTED} edges)</p>"
        );
    }
    if s.communities.is_empty() {
        out.push_str("<p class=\"none\">no communities</p>\n");
    }
    if s.federation_name.is_empty() {
        out.push_str("<h2>federation</h2>\n");
    } else {
        let _ = writeln!(
            out,
            "<h2>federation <code>{}</code></h2>",
            escape(&s.federation_name)
        );
    }
    if s.federation.is_empty() {
        out.push_str("<p class=\"none\">no other supernodes</p>\n");
    } else {
        out.push_str(
            "<table class=\"federation\"><tr><th>MAC</th><th>socket</th><th>version</th><th>last seen</th></tr>\n",
        );
        for sn in s.federation.iter().take(MAX_SUPERNODES_LISTED) {
            let _ = writeln!(
                out,
                "<tr><td><code>{}</code></td><td><code>{}</code></td><td>{}</td><td>{}</td></tr>",
                mac_text(&sn.mac),
                escape(&sn.sockaddr.to_string()),
                escape(&sn.version),
                ago(s.now_unix, sn.last_seen_unix),
            );
        }
        out.push_str("</table>\n");
        let more = s.federation.len().saturating_sub(MAX_SUPERNODES_LISTED);
        if more > 0 {
            let _ = writeln!(out, "<p class=\"none\">{more} more not shown</p>");
        }
    }
    out.push_str("<p class=\"meta\"><a href=\"/metrics\">metrics</a></p>\n</body></html>\n");
    out
}

/// The edge's small page: registration state, peers, traffic.
#[must_use]
pub fn edge_page(s: &EdgeSnapshot) -> String {
    let mut out = String::with_capacity(2048);
    head(&mut out, "n2n edge");
    let sn = match (s.supernode_up, s.supernode) {
        (true, Some(a)) => format!("registered to <code>{}</code>", escape(&a.to_string())),
        (true, None) => "registered".into(),
        (false, _) => "<strong>not registered</strong>".into(),
    };
    let drops: u64 = s.drops.iter().map(|(_, n)| n).sum();
    let _ = write!(
        out,
        "<h1>n2n edge</h1>\n<p class=\"meta\">version {} &middot; community <code>{}</code></p>\n\
         <p>{sn}</p>\n<table class=\"summary\">\
         <tr><td>peers P2P</td><td class=\"num\">{}</td></tr>\
         <tr><td>peers relayed</td><td class=\"num\">{}</td></tr>\
         <tr><td>sent P2P / via supernode</td><td class=\"num\">{} / {} packets</td></tr>\
         <tr><td>received P2P / via supernode</td><td class=\"num\">{} / {} packets</td></tr>\
         <tr><td>dropped</td><td class=\"num\">{drops}</td></tr></table>\n\
         <p class=\"meta\"><a href=\"/metrics\">metrics</a></p>\n</body></html>\n",
        escape(&s.version),
        escape(&s.community),
        s.peers_p2p,
        s.peers_relayed,
        s.p2p.tx_packets,
        s.via_supernode.tx_packets,
        s.p2p.rx_packets,
        s.via_supernode.rx_packets,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_everything_html_cares_about() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
        assert_eq!(
            escape("a\0b\u{1b}[31m\u{85}c\td"),
            "a\u{fffd}b\u{fffd}[31m\u{fffd}c\td"
        );
        assert_eq!(escape("plain ünïcode"), "plain ünïcode");
    }

    #[test]
    fn formats() {
        assert_eq!(
            mac_text(&[0x02, 0xab, 0, 0x10, 0xff, 0x9]),
            "02:AB:00:10:FF:09"
        );
        assert_eq!(utc_text(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc_text(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc_text(1_700_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(utc_text(4_107_542_399), "2100-02-28 23:59:59 UTC");
        assert_eq!(ago(100, 0), "never");
        assert_eq!(ago(100, 100), "0 s ago");
        assert_eq!(ago(100, 200), "0 s ago");
        assert_eq!(ago(1000, 881), "119 s ago");
        assert_eq!(ago(1000, 880), "2 min ago");
        assert_eq!(ago(100_000, 1), "27 h ago");
        assert_eq!(ago(200_000, 1), "2 d ago");
    }
}
