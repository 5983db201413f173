//! A small, strict parser of the OpenMetrics 1.0 / Prometheus 0.0.4 text formats, enough to
//! check what the crate renders: line syntax, HELP/TYPE/UNIT before samples, one TYPE per
//! family, sample names matching the family's type (`_total` for counters), label escaping,
//! no duplicate series, `# EOF` last (OpenMetrics only).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::{BTreeMap, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    OpenMetrics,
    Prometheus,
}

#[derive(Debug, Default, Clone)]
pub struct Family {
    pub name: String,
    pub help: Option<String>,
    pub ty: Option<String>,
    pub unit: Option<String>,
    pub samples: Vec<Sample>,
}

#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

#[derive(Debug, Default)]
pub struct Exposition {
    pub families: Vec<Family>,
}

impl Exposition {
    pub fn family(&self, name: &str) -> &Family {
        self.families
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no family {name}"))
    }

    pub fn samples(&self) -> impl Iterator<Item = &Sample> {
        self.families.iter().flat_map(|f| f.samples.iter())
    }

    /// The value of the sample `name` with exactly these labels.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let want: BTreeMap<String, String> = labels
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        self.samples()
            .find(|s| s.name == name && s.labels == want)
            .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
            .value
    }

    pub fn sample_names(&self) -> HashSet<String> {
        self.samples().map(|s| s.name.clone()).collect()
    }
}

fn is_metric_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_' || f == ':')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == ':')
}

fn is_label_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|ch| ch.is_ascii_alphanumeric() || ch == '_')
}

/// Parses `{k="v",...}` at the start of `s`; returns labels and the rest.
fn parse_labels(s: &str) -> Result<(BTreeMap<String, String>, &str), String> {
    let mut labels = BTreeMap::new();
    let Some(mut rest) = s.strip_prefix('{') else {
        return Ok((labels, s));
    };
    loop {
        if let Some(r) = rest.strip_prefix('}') {
            return Ok((labels, r));
        }
        let eq = rest.find('=').ok_or("label without =")?;
        let key = &rest[..eq];
        if !is_label_name(key) {
            return Err(format!("bad label name {key:?}"));
        }
        rest = rest[eq + 1..]
            .strip_prefix('"')
            .ok_or("label value not quoted")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            let (i, c) = chars.next().ok_or("unterminated label value")?;
            match c {
                '"' => break i,
                '\\' => match chars.next().ok_or("dangling escape")?.1 {
                    '\\' => value.push('\\'),
                    '"' => value.push('"'),
                    'n' => value.push('\n'),
                    other => return Err(format!("bad escape \\{other}")),
                },
                '\n' => return Err("raw newline in label value".into()),
                c => value.push(c),
            }
        };
        if labels.insert(key.to_string(), value).is_some() {
            return Err(format!("label {key} twice"));
        }
        rest = &rest[end + 1..];
        if let Some(r) = rest.strip_prefix(',') {
            rest = r;
        } else if !rest.starts_with('}') {
            return Err("expected , or } after a label".into());
        }
    }
}

fn parse_value(s: &str) -> Result<f64, String> {
    match s {
        "+Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => s
            .parse::<f64>()
            .map_err(|e| format!("bad value {s:?}: {e}")),
    }
}

/// Which family a sample name belongs to, given the family's type.
fn sample_matches(dialect: Dialect, family: &Family, sample: &str) -> bool {
    let ty = family.ty.as_deref().unwrap_or("unknown");
    match (dialect, ty) {
        (Dialect::OpenMetrics, "counter") => sample == format!("{}_total", family.name),
        (Dialect::OpenMetrics, "info") => sample == format!("{}_info", family.name),
        (Dialect::Prometheus, "counter") => {
            sample == family.name && family.name.ends_with("_total")
        }
        _ => sample == family.name,
    }
}

pub fn parse(text: &str, dialect: Dialect) -> Result<Exposition, String> {
    let mut exp = Exposition::default();
    let mut seen_series = HashSet::new();
    let mut eof = false;
    if !text.ends_with('\n') {
        return Err("exposition does not end with a newline".into());
    }
    for (n, line) in text.lines().enumerate() {
        let err = |m: String| format!("line {}: {m}: {line:?}", n + 1);
        if eof {
            return Err(err("content after # EOF".into()));
        }
        if line == "# EOF" {
            if dialect == Dialect::Prometheus {
                return Err(err("# EOF in the Prometheus format".into()));
            }
            eof = true;
            continue;
        }
        if let Some(meta) = line.strip_prefix("# ") {
            let mut it = meta.splitn(3, ' ');
            let (kind, name, rest) = (
                it.next().unwrap_or(""),
                it.next().unwrap_or(""),
                it.next().unwrap_or(""),
            );
            if !is_metric_name(name) {
                return Err(err(format!("bad family name {name:?}")));
            }
            if exp.families.last().is_none_or(|f| f.name != name) {
                if exp.families.iter().any(|f| f.name == name) {
                    return Err(err(format!("family {name} split")));
                }
                exp.families.push(Family {
                    name: name.into(),
                    ..Family::default()
                });
            }
            let fam = exp.families.last_mut().unwrap();
            if !fam.samples.is_empty() {
                return Err(err("metadata after samples".into()));
            }
            let slot = match kind {
                "HELP" => &mut fam.help,
                "TYPE" => {
                    let ok = match dialect {
                        Dialect::OpenMetrics => [
                            "counter",
                            "gauge",
                            "histogram",
                            "gaugehistogram",
                            "stateset",
                            "info",
                            "summary",
                            "unknown",
                        ]
                        .contains(&rest),
                        Dialect::Prometheus => {
                            ["counter", "gauge", "histogram", "summary", "untyped"].contains(&rest)
                        }
                    };
                    if !ok {
                        return Err(err(format!("bad type {rest:?}")));
                    }
                    &mut fam.ty
                }
                "UNIT" if dialect == Dialect::OpenMetrics => {
                    if !name.ends_with(&format!("_{rest}")) {
                        return Err(err("family name does not end with its unit".into()));
                    }
                    &mut fam.unit
                }
                _ => return Err(err(format!("unknown metadata {kind:?}"))),
            };
            if slot.replace(rest.to_string()).is_some() {
                return Err(err(format!("second {kind}")));
            }
            continue;
        }
        if line.starts_with('#') {
            return Err(err("stray comment".into()));
        }
        let name_end = line
            .find(['{', ' '])
            .ok_or_else(|| err("sample without value".into()))?;
        let name = &line[..name_end];
        if !is_metric_name(name) {
            return Err(err(format!("bad sample name {name:?}")));
        }
        let (labels, rest) = parse_labels(&line[name_end..]).map_err(err)?;
        let value = rest
            .strip_prefix(' ')
            .ok_or_else(|| err("no space before value".into()))?;
        if value.contains(' ') {
            return Err(err("timestamps/exemplars not expected".into()));
        }
        let value = parse_value(value).map_err(err)?;
        let fam = exp
            .families
            .last_mut()
            .ok_or_else(|| err("sample before any TYPE".into()))?;
        if fam.ty.is_none() || fam.help.is_none() {
            return Err(err("sample of a family without HELP/TYPE".into()));
        }
        if !sample_matches(dialect, fam, name) {
            return Err(err(format!(
                "sample {name} does not belong to family {} ({:?})",
                fam.name, fam.ty
            )));
        }
        if !seen_series.insert(format!("{name}{labels:?}")) {
            return Err(err("duplicate series".into()));
        }
        fam.samples.push(Sample {
            name: name.into(),
            labels,
            value,
        });
    }
    if dialect == Dialect::OpenMetrics && !eof {
        return Err("no # EOF".into());
    }
    Ok(exp)
}
