//! Text without `core::fmt`: the ids, reasons and error messages the SDK builds on every
//! target, written so that the browser build links no formatting machinery (`core::fmt`'s
//! `write`, padding and integer printing were about 5 KB of the npm package, for messages).
//! The error types' `Display` writes their `message()`, made with these.

/// `template` with each `{}` replaced by the next of `args`, in order; a `{}` beyond the
/// last arg stays as it is.
pub fn fill(template: &str, args: &[&str]) -> String {
    let extra: usize = args.iter().map(|a| a.len()).sum();
    let mut out = String::with_capacity(template.len() + extra);
    let mut args = args.iter();
    // A byte scan, not `split_once("{}")`: a substring searcher is 0.8 KB of the browser
    // build. `{` is ASCII, so every cut is at a char boundary.
    let bytes = template.as_bytes();
    let (mut copied, mut i) = (0, 0);
    while i + 1 < bytes.len() {
        if bytes.get(i..i + 2) == Some(b"{}".as_slice()) {
            if let Some(arg) = args.next() {
                out.push_str(template.get(copied..i).unwrap_or_default());
                out.push_str(arg);
                copied = i + 2;
            }
            i += 2;
        } else {
            i += 1;
        }
    }
    out.push_str(template.get(copied..).unwrap_or_default());
    out
}

/// `n` in decimal.
pub fn decimal(n: u64) -> String {
    let mut out = String::new();
    push_decimal(&mut out, n);
    out
}

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
    fn fill_puts_the_args_in_order() {
        assert_eq!(fill("a {} b {} c", &["1", "22"]), "a 1 b 22 c");
        assert_eq!(fill("{}{}", &["x", "y"]), "xy");
        assert_eq!(fill("no args", &[]), "no args");
        assert_eq!(fill("one {} two {}", &["1"]), "one 1 two {}");
        assert_eq!(fill("{}", &["{}"]), "{}", "an arg is not a template");
        assert_eq!(decimal(4009), "4009");
    }

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
