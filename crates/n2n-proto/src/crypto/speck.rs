//! Speck128/128 and Speck128/256 (crypto.md §1.2), with n2n's byte
//! conventions, and n2n's Speck-CTR (only the low 64 bits of the IV count).

/// An expanded Speck128 key (128- or 256-bit).
#[derive(Clone)]
pub struct Speck128 {
    rk: [u64; 34],
    rounds: usize,
}

impl core::fmt::Debug for Speck128 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Speck128")
            .field("rounds", &self.rounds)
            .finish_non_exhaustive()
    }
}

#[inline(always)]
fn le64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

impl Speck128 {
    /// Speck128/128: 32 rounds.
    pub fn new_128(key: &[u8; 16]) -> Self {
        let mut rk = [0u64; 34];
        let mut k = le64(&key[0..8]);
        let mut l = le64(&key[8..16]);
        rk[0] = k;
        for i in 0..31u64 {
            l = (l.rotate_right(8).wrapping_add(k)) ^ i;
            k = k.rotate_left(3) ^ l;
            rk[i as usize + 1] = k;
        }
        Self { rk, rounds: 32 }
    }

    /// Speck128/256: 34 rounds.
    pub fn new_256(key: &[u8; 32]) -> Self {
        let mut rk = [0u64; 34];
        let mut k = le64(&key[0..8]);
        let mut l = [le64(&key[8..16]), le64(&key[16..24]), le64(&key[24..32])];
        rk[0] = k;
        for i in 0..33usize {
            let li = l[i % 3];
            let new_l = (li.rotate_right(8).wrapping_add(k)) ^ i as u64;
            l[i % 3] = new_l;
            k = k.rotate_left(3) ^ new_l;
            rk[i + 1] = k;
        }
        Self { rk, rounds: 34 }
    }

    #[inline(always)]
    fn enc_words(&self, mut x: u64, mut y: u64) -> (u64, u64) {
        for &k in &self.rk[..self.rounds] {
            x = (x.rotate_right(8).wrapping_add(y)) ^ k;
            y = y.rotate_left(3) ^ x;
        }
        (x, y)
    }

    /// The round keys in use (32 or 34 words), for bulk implementations.
    pub(crate) fn round_keys(&self) -> &[u64] {
        &self.rk[..self.rounds]
    }

    /// Encrypt one 16-byte block in place.
    pub fn encrypt_block(&self, block: &mut [u8; 16]) {
        let (x, y) = self.enc_words(le64(&block[8..16]), le64(&block[0..8]));
        block[0..8].copy_from_slice(&y.to_le_bytes());
        block[8..16].copy_from_slice(&x.to_le_bytes());
    }

    /// Decrypt one 16-byte block in place.
    pub fn decrypt_block(&self, block: &mut [u8; 16]) {
        let mut y = le64(&block[0..8]);
        let mut x = le64(&block[8..16]);
        for &k in self.rk[..self.rounds].iter().rev() {
            y = (y ^ x).rotate_right(3);
            x = ((x ^ k).wrapping_sub(y)).rotate_left(8);
        }
        block[0..8].copy_from_slice(&y.to_le_bytes());
        block[8..16].copy_from_slice(&x.to_le_bytes());
    }

    /// n2n Speck-CTR: XOR `data` with the keystream for `iv`. Block `j` of the
    /// keystream is `E(le64(LE64(iv[0..8]) + j) || iv[8..16])`; the low half
    /// wraps without carrying into the high half.
    pub fn ctr_xor(&self, iv: &[u8; 16], data: &mut [u8]) {
        let lo = le64(&iv[0..8]);
        let hi = le64(&iv[8..16]);
        let mut ctr = lo;
        let mut chunks = data.chunks_exact_mut(16);
        for chunk in &mut chunks {
            let (x, y) = self.enc_words(hi, ctr);
            let a = le64(&chunk[0..8]) ^ y;
            let b = le64(&chunk[8..16]) ^ x;
            chunk[0..8].copy_from_slice(&a.to_le_bytes());
            chunk[8..16].copy_from_slice(&b.to_le_bytes());
            ctr = ctr.wrapping_add(1);
        }
        let rest = chunks.into_remainder();
        if !rest.is_empty() {
            let (x, y) = self.enc_words(hi, ctr);
            let mut ks = [0u8; 16];
            ks[0..8].copy_from_slice(&y.to_le_bytes());
            ks[8..16].copy_from_slice(&x.to_le_bytes());
            for (d, k) in rest.iter_mut().zip(ks) {
                *d ^= k;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq<const N: usize>() -> [u8; N] {
        core::array::from_fn(|i| i as u8)
    }

    #[test]
    fn official_vectors() {
        let c = Speck128::new_128(&seq::<16>());
        let mut b: [u8; 16] = hex::decode("206d616465206974206571756976616c")
            .unwrap()
            .try_into()
            .unwrap();
        c.encrypt_block(&mut b);
        assert_eq!(hex::encode(b), "180d575cdffe60786532787951985da6");
        c.decrypt_block(&mut b);
        assert_eq!(hex::encode(b), "206d616465206974206571756976616c");

        let c = Speck128::new_256(&seq::<32>());
        let mut b: [u8; 16] = hex::decode("706f6f6e65722e20496e2074686f7365")
            .unwrap()
            .try_into()
            .unwrap();
        c.encrypt_block(&mut b);
        assert_eq!(hex::encode(b), "438f189c8db4ee4e3ef5c00504010941");
        c.decrypt_block(&mut b);
        assert_eq!(hex::encode(b), "706f6f6e65722e20496e2074686f7365");
    }

    #[test]
    fn ctr_keystream() {
        let c = Speck128::new_256(&seq::<32>());
        let iv: [u8; 16] = core::array::from_fn(|i| 0xf0 + i as u8);
        let mut z = [0u8; 40];
        c.ctr_xor(&iv, &mut z);
        assert_eq!(
            hex::encode(z),
            "435a6a5101df2af36ce3653b97e790945c88e0c11728332417b0ef79c6d882a077e45587cbda46e5"
        );
        let iv: [u8; 16] = hex::decode("ffffffffffffffff1111111111111111")
            .unwrap()
            .try_into()
            .unwrap();
        let mut z = [0u8; 48];
        c.ctr_xor(&iv, &mut z);
        assert_eq!(
            hex::encode(z),
            "b7161cd8465df1e378c4f772bf7771217d3d8d4ee7a26f813aebe0b5a9dde4b20cf4edba5d515195e532f74557e3d82e"
        );
    }
}
