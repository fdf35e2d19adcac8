//! Numbers into strings without `core::fmt`: the reasons and ids the core builds on every
//! target, written so that the browser build needs no formatting machinery for them.

/// `n` in decimal, appended to `out`.
pub(crate) fn push_decimal(out: &mut String, n: u64) {
    // u64::MAX has 20 digits.
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        // `n % 10` is below 10: the cast keeps every value.
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in digits.get(i..).unwrap_or_default() {
        out.push(char::from(d));
    }
}

/// `n` as 16 lowercase hex digits (zero-padded), as `{:016x}` writes it.
pub(crate) fn hex16(n: u64) -> String {
    (0..16)
        .rev()
        .map(|i| {
            let nibble = u8::try_from((n >> (i * 4)) & 0xf).unwrap_or(0);
            char::from(if nibble < 10 {
                b'0' + nibble
            } else {
                b'a' + nibble - 10
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_matches_display() {
        for n in [
            0,
            1,
            9,
            10,
            99,
            100,
            4009,
            65_535,
            u64::from(u32::MAX),
            u64::MAX,
        ] {
            let mut s = String::from("x");
            push_decimal(&mut s, n);
            assert_eq!(s, format!("x{n}"));
        }
    }

    #[test]
    fn hex_matches_format() {
        for n in [0, 1, 0xabc, 0x0123_4567_89ab_cdef, u64::MAX] {
            assert_eq!(hex16(n), format!("{n:016x}"));
        }
    }
}
