//! Table-driven Twofish-256 (block cipher only).
//!
//! The key-dependent part of the `g` function (the chain of `q0`/`q1`
//! permutations interleaved with the S-box key bytes, followed by the MDS
//! matrix) is folded into four 256-entry `u32` tables when the key is set,
//! so a round costs eight table look-ups, as in the "full keying" option of
//! the Twofish paper. The `twofish` crate, which recomputes those chains for
//! every block, is kept as a test reference only.

/// q0 and q1 nibble tables (Twofish paper, section 4.3.5).
const QBOX: [[[u8; 16]; 4]; 2] = [
    [
        [
            0x8, 0x1, 0x7, 0xD, 0x6, 0xF, 0x3, 0x2, 0x0, 0xB, 0x5, 0x9, 0xE, 0xC, 0xA, 0x4,
        ],
        [
            0xE, 0xC, 0xB, 0x8, 0x1, 0x2, 0x3, 0x5, 0xF, 0x4, 0xA, 0x6, 0x7, 0x0, 0x9, 0xD,
        ],
        [
            0xB, 0xA, 0x5, 0xE, 0x6, 0xD, 0x9, 0x0, 0xC, 0x8, 0xF, 0x3, 0x2, 0x4, 0x7, 0x1,
        ],
        [
            0xD, 0x7, 0xF, 0x4, 0x1, 0x2, 0x6, 0xE, 0x9, 0xB, 0x3, 0x0, 0x8, 0x5, 0xC, 0xA,
        ],
    ],
    [
        [
            0x2, 0x8, 0xB, 0xD, 0xF, 0x7, 0x6, 0xE, 0x3, 0x1, 0x9, 0x4, 0x0, 0xA, 0xC, 0x5,
        ],
        [
            0x1, 0xE, 0x2, 0xB, 0x4, 0xC, 0x3, 0x7, 0x6, 0xD, 0xA, 0x5, 0xF, 0x9, 0x0, 0x8,
        ],
        [
            0x4, 0xC, 0x7, 0x5, 0x1, 0x6, 0x9, 0xA, 0x0, 0xE, 0xD, 0x8, 0x2, 0xB, 0x3, 0xF,
        ],
        [
            0xB, 0x9, 0x5, 0x1, 0xC, 0x3, 0xD, 0xE, 0x6, 0x4, 0x7, 0xF, 0x2, 0x0, 0x8, 0xA,
        ],
    ],
];

/// Reed-Solomon matrix used to derive the S-box key words.
const RS: [[u8; 8]; 4] = [
    [0x01, 0xa4, 0x55, 0x87, 0x5a, 0x58, 0xdb, 0x9e],
    [0xa4, 0x56, 0x82, 0xf3, 0x1e, 0xc6, 0x68, 0xe5],
    [0x02, 0xa1, 0xfc, 0xc1, 0x47, 0xae, 0x3d, 0x19],
    [0xa4, 0x55, 0x87, 0x5a, 0x58, 0xdb, 0x9e, 0x03],
];

/// x^8 + x^6 + x^5 + x^3 + 1 (MDS field), low byte.
const MDS_POLY: u8 = 0x69;
/// x^8 + x^6 + x^3 + x^2 + 1 (RS field), low byte.
const RS_POLY: u8 = 0x4d;

const fn q_slow(i: usize, x: u8) -> u8 {
    let a0 = (x >> 4) & 15;
    let b0 = x & 15;
    let a1 = a0 ^ b0;
    let b1 = (a0 ^ ((b0 << 3) | (b0 >> 1)) ^ (a0 << 3)) & 15;
    let a2 = QBOX[i][0][a1 as usize];
    let b2 = QBOX[i][1][b1 as usize];
    let a3 = a2 ^ b2;
    let b3 = (a2 ^ ((b2 << 3) | (b2 >> 1)) ^ (a2 << 3)) & 15;
    let a4 = QBOX[i][2][a3 as usize];
    let b4 = QBOX[i][3][b3 as usize];
    (b4 << 4) | a4
}

const fn q_table(i: usize) -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut x = 0;
    while x < 256 {
        t[x] = q_slow(i, x as u8);
        x += 1;
    }
    t
}

/// The fixed permutations q0 and q1 as byte tables.
static Q: [[u8; 256]; 2] = [q_table(0), q_table(1)];

#[inline(always)]
fn q0(x: u8) -> u8 {
    Q[0][x as usize]
}

#[inline(always)]
fn q1(x: u8) -> u8 {
    Q[1][x as usize]
}

const fn gf_mult(mut a: u8, mut b: u8, p: u8) -> u8 {
    let mut r = 0;
    while a > 0 {
        if a & 1 == 1 {
            r ^= b;
        }
        a >>= 1;
        b = if b & 0x80 != 0 { (b << 1) ^ p } else { b << 1 };
    }
    r
}

/// Column `c` of the MDS matrix times byte `x`, as a little-endian word.
fn mds_column(x: u8, c: usize) -> u32 {
    let x5b = gf_mult(x, 0x5b, MDS_POLY);
    let xef = gf_mult(x, 0xef, MDS_POLY);
    let v = match c {
        0 => [x, x5b, xef, xef],
        1 => [xef, xef, x5b, x],
        2 => [x5b, xef, x, xef],
        _ => [x5b, x, xef, x5b],
    };
    u32::from_le_bytes(v)
}

/// The `h` function for a 256-bit key (k = 4); `l` are the four key words
/// L0..L3 (each 4 bytes, little-endian order of bytes).
fn h(x: u8, l: &[[u8; 4]; 4]) -> [u8; 4] {
    let mut y = [x; 4];
    y[0] = q1(y[0]) ^ l[3][0];
    y[1] = q0(y[1]) ^ l[3][1];
    y[2] = q0(y[2]) ^ l[3][2];
    y[3] = q1(y[3]) ^ l[3][3];

    y[0] = q1(y[0]) ^ l[2][0];
    y[1] = q1(y[1]) ^ l[2][1];
    y[2] = q0(y[2]) ^ l[2][2];
    y[3] = q0(y[3]) ^ l[2][3];

    y[0] = q1(q0(q0(y[0]) ^ l[1][0]) ^ l[0][0]);
    y[1] = q0(q0(q1(y[1]) ^ l[1][1]) ^ l[0][1]);
    y[2] = q1(q1(q0(y[2]) ^ l[1][2]) ^ l[0][2]);
    y[3] = q0(q1(q1(y[3]) ^ l[1][3]) ^ l[0][3]);
    y
}

fn h_word(x: u8, l: &[[u8; 4]; 4]) -> u32 {
    let y = h(x, l);
    mds_column(y[0], 0) ^ mds_column(y[1], 1) ^ mds_column(y[2], 2) ^ mds_column(y[3], 3)
}

/// A Twofish-256 key with its full key-dependent tables.
#[derive(Clone)]
pub struct Twofish {
    /// `s[i][x]` = MDS column i applied to the S-box chain of byte i.
    s: [[u32; 256]; 4],
    /// Whitening and round subkeys K0..K39.
    k: [u32; 40],
}

impl core::fmt::Debug for Twofish {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("Twofish { .. }")
    }
}

impl Twofish {
    /// Expands a 256-bit key.
    pub fn new(key: &[u8; 32]) -> Self {
        let word =
            |i: usize| -> [u8; 4] { [key[4 * i], key[4 * i + 1], key[4 * i + 2], key[4 * i + 3]] };
        let me = [word(0), word(2), word(4), word(6)];
        let mo = [word(1), word(3), word(5), word(7)];

        let mut k = [0u32; 40];
        for i in 0..20u8 {
            let a = h_word(2 * i, &me);
            let b = h_word(2 * i + 1, &mo).rotate_left(8);
            let a = a.wrapping_add(b);
            k[2 * i as usize] = a;
            k[2 * i as usize + 1] = a.wrapping_add(b).rotate_left(9);
        }

        // S-box key words S_i = RS * key[8i..8i+8]. The g function applies
        // S_0 first and S_3 last, i.e. h() with L3 = S_0 ... L0 = S_3.
        let mut sw = [[0u8; 4]; 4];
        for (i, chunk) in key.chunks_exact(8).enumerate() {
            for (r, row) in RS.iter().enumerate() {
                let mut acc = 0u8;
                for (&m, &c) in chunk.iter().zip(row) {
                    acc ^= gf_mult(m, c, RS_POLY);
                }
                sw[i][r] = acc;
            }
        }
        let l = [sw[3], sw[2], sw[1], sw[0]];

        let mut s = [[0u32; 256]; 4];
        for x in 0..=255u8 {
            let y = h(x, &l);
            for c in 0..4 {
                s[c][x as usize] = mds_column(y[c], c);
            }
        }
        Self { s, k }
    }

    #[inline(always)]
    fn g0(&self, x: u32) -> u32 {
        self.s[0][(x & 0xff) as usize]
            ^ self.s[1][((x >> 8) & 0xff) as usize]
            ^ self.s[2][((x >> 16) & 0xff) as usize]
            ^ self.s[3][(x >> 24) as usize]
    }

    #[inline(always)]
    fn g1(&self, x: u32) -> u32 {
        // g(ROL(x, 8)) without the rotation.
        self.s[0][(x >> 24) as usize]
            ^ self.s[1][(x & 0xff) as usize]
            ^ self.s[2][((x >> 8) & 0xff) as usize]
            ^ self.s[3][((x >> 16) & 0xff) as usize]
    }

    /// Encrypts one block in place.
    #[inline]
    pub fn encrypt_block(&self, block: &mut [u8; 16]) {
        let k = &self.k;
        let w = |i: usize| {
            u32::from_le_bytes([
                block[4 * i],
                block[4 * i + 1],
                block[4 * i + 2],
                block[4 * i + 3],
            ])
        };
        let mut a = w(0) ^ k[0];
        let mut b = w(1) ^ k[1];
        let mut c = w(2) ^ k[2];
        let mut d = w(3) ^ k[3];
        macro_rules! round {
            ($r:expr) => {
                let t0 = self.g0(a);
                let t1 = self.g1(b);
                c = (c ^ t0.wrapping_add(t1).wrapping_add(k[8 + 4 * $r])).rotate_right(1);
                d = d.rotate_left(1)
                    ^ t0.wrapping_add(t1.wrapping_mul(2))
                        .wrapping_add(k[9 + 4 * $r]);
                let t0 = self.g0(c);
                let t1 = self.g1(d);
                a = (a ^ t0.wrapping_add(t1).wrapping_add(k[10 + 4 * $r])).rotate_right(1);
                b = b.rotate_left(1)
                    ^ t0.wrapping_add(t1.wrapping_mul(2))
                        .wrapping_add(k[11 + 4 * $r]);
            };
        }
        round!(0);
        round!(1);
        round!(2);
        round!(3);
        round!(4);
        round!(5);
        round!(6);
        round!(7);
        block[0..4].copy_from_slice(&(c ^ k[4]).to_le_bytes());
        block[4..8].copy_from_slice(&(d ^ k[5]).to_le_bytes());
        block[8..12].copy_from_slice(&(a ^ k[6]).to_le_bytes());
        block[12..16].copy_from_slice(&(b ^ k[7]).to_le_bytes());
    }

    /// Decrypts one block in place.
    #[inline]
    pub fn decrypt_block(&self, block: &mut [u8; 16]) {
        let k = &self.k;
        let w = |i: usize| {
            u32::from_le_bytes([
                block[4 * i],
                block[4 * i + 1],
                block[4 * i + 2],
                block[4 * i + 3],
            ])
        };
        let mut c = w(0) ^ k[4];
        let mut d = w(1) ^ k[5];
        let mut a = w(2) ^ k[6];
        let mut b = w(3) ^ k[7];
        macro_rules! round {
            ($r:expr) => {
                let t0 = self.g0(c);
                let t1 = self.g1(d);
                a = a.rotate_left(1) ^ t0.wrapping_add(t1).wrapping_add(k[10 + 4 * $r]);
                b = (b ^ t0
                    .wrapping_add(t1.wrapping_mul(2))
                    .wrapping_add(k[11 + 4 * $r]))
                .rotate_right(1);
                let t0 = self.g0(a);
                let t1 = self.g1(b);
                c = c.rotate_left(1) ^ t0.wrapping_add(t1).wrapping_add(k[8 + 4 * $r]);
                d = (d ^ t0
                    .wrapping_add(t1.wrapping_mul(2))
                    .wrapping_add(k[9 + 4 * $r]))
                .rotate_right(1);
            };
        }
        round!(7);
        round!(6);
        round!(5);
        round!(4);
        round!(3);
        round!(2);
        round!(1);
        round!(0);
        block[0..4].copy_from_slice(&(a ^ k[0]).to_le_bytes());
        block[4..8].copy_from_slice(&(b ^ k[1]).to_le_bytes());
        block[8..12].copy_from_slice(&(c ^ k[2]).to_le_bytes());
        block[12..16].copy_from_slice(&(d ^ k[3]).to_le_bytes());
    }
}

impl super::cts::Cipher16 for Twofish {
    #[inline]
    fn encrypt_block(&self, block: &mut [u8; 16]) {
        Twofish::encrypt_block(self, block);
    }

    #[inline]
    fn decrypt_block(&self, block: &mut [u8; 16]) {
        Twofish::decrypt_block(self, block);
    }
}
