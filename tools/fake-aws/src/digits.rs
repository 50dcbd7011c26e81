//! Zero-padded numbers written straight into a response buffer. `format!("{n:054}")` pads one
//! character at a time through `core::fmt`, which took a quarter of the fake's CPU time on
//! PutRecords answers (perf, 500-record batches); these helpers are plain byte copies.

const ZEROS: &[u8; 64] = &[b'0'; 64];

/// Appends `value` in decimal, left-padded with zeros to at least `width` digits.
pub fn push_decimal(out: &mut Vec<u8>, value: u64, width: usize) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    let mut v = value;
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    pad(out, width.saturating_sub(buf.len() - i));
    out.extend_from_slice(&buf[i..]);
}

/// Appends `value` in lower-case hex, left-padded with zeros to at least `width` digits.
pub fn push_hex(out: &mut Vec<u8>, value: u64, width: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut buf = [0u8; 16];
    let mut i = buf.len();
    let mut v = value;
    loop {
        i -= 1;
        buf[i] = HEX[(v & 15) as usize];
        v >>= 4;
        if v == 0 {
            break;
        }
    }
    pad(out, width.saturating_sub(buf.len() - i));
    out.extend_from_slice(&buf[i..]);
}

fn pad(out: &mut Vec<u8>, mut zeros: usize) {
    while zeros > 0 {
        let n = zeros.min(ZEROS.len());
        out.extend_from_slice(&ZEROS[..n]);
        zeros -= n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_as_core_fmt() {
        for v in [0u64, 7, 10, 12345, u64::MAX] {
            for width in [0usize, 1, 12, 20, 54, 70] {
                let mut out = Vec::new();
                push_decimal(&mut out, v, width);
                assert_eq!(String::from_utf8(out).unwrap(), format!("{v:0width$}"));
                let mut out = Vec::new();
                push_hex(&mut out, v, width);
                assert_eq!(String::from_utf8(out).unwrap(), format!("{v:0width$x}"));
            }
        }
    }
}
