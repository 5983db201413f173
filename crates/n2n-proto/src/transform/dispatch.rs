//! Run-time CPU dispatch: the only `unsafe` code of this crate.
//!
//! Each `unsafe` block calls a `#[target_feature]` function whose body is
//! safe code, right after `is_x86_feature_detected!` confirmed that the CPU
//! has exactly the features that function is compiled for. That is the
//! whole safety argument: calling such a function is only unsafe because
//! the compiler cannot see the run-time check.
#![allow(unsafe_code)]

/// Speck-CTR with the best implementation for this CPU.
pub(crate) fn speck_ctr(rk: &[u64], iv: &[u8; 16], data: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: `ctr_avx512` requires AVX-512F only; present (checked above).
            return unsafe { super::speck::x86::ctr_avx512(rk, iv, data) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: `ctr_avx2` requires AVX2 only; present (checked above).
            return unsafe { super::speck::x86::ctr_avx2(rk, iv, data) };
        }
    }
    super::speck::ctr_portable(rk, iv, data);
}

/// Name of the Speck implementation [`speck_ctr`] uses.
pub(crate) fn speck_backend() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "avx512";
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            return "avx2";
        }
    }
    "portable"
}

/// Every Speck implementation this CPU can run (for tests).
pub(crate) fn speck_each(rk: &[u64], iv: &[u8; 16], data: &[u8]) -> Vec<(&'static str, Vec<u8>)> {
    let mut v = Vec::new();
    let mut d = data.to_vec();
    super::speck::ctr_portable(rk, iv, &mut d);
    v.push(("portable", d));
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            let mut d = data.to_vec();
            // SAFETY: AVX2 present (checked above).
            unsafe { super::speck::x86::ctr_avx2(rk, iv, &mut d) };
            v.push(("avx2", d));
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            let mut d = data.to_vec();
            // SAFETY: AVX-512F present (checked above).
            unsafe { super::speck::x86::ctr_avx512(rk, iv, &mut d) };
            v.push(("avx512", d));
        }
    }
    v
}

/// AES-CBC encryption (zero IV) with AES-NI and `NK` round keys; `false`
/// (nothing done) when the CPU has no AES-NI.
pub(crate) fn aes_cbc_encrypt<const NK: usize>(rk: &[[u8; 16]; 15], data: &mut [u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("aes") {
            // SAFETY: `cbc_encrypt` requires AES-NI only; present (checked above).
            unsafe { super::aes::x86::cbc_encrypt::<NK>(rk, data) };
            return true;
        }
    }
    let _ = (rk, data);
    false
}

/// Four AES-CBC encryptions (zero IV) interleaved with AES-NI; the
/// buffers back, untouched, when the CPU has no AES-NI.
pub(crate) fn aes_cbc_encrypt_x4<'a, const NK: usize>(
    rk: &[[u8; 16]; 15],
    bufs: [&'a mut [u8]; 4],
) -> Result<(), [&'a mut [u8]; 4]> {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("aes") {
            // SAFETY: `cbc_encrypt_x4` requires AES-NI only; present (checked above).
            unsafe { super::aes::x86::cbc_encrypt_x4::<NK>(rk, bufs) };
            return Ok(());
        }
    }
    let _ = rk;
    Err(bufs)
}
