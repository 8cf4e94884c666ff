//! Minimal reader for `.npy` files holding a C-order little-endian f32
//! matrix (`<f4`, 2-D), e.g. ../shared/data/minilm-dev/base.npy.

use std::path::Path;

use crate::error::{Error, Result};

/// Rows × dim floats.
pub struct Matrix {
    pub rows: usize,
    pub dim: usize,
    pub data: Vec<f32>,
}

impl Matrix {
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

pub fn parse(bytes: &[u8]) -> Result<Matrix> {
    let bad = |why: &str| Error::invalid(format!("not a supported .npy file: {why}"));
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("missing \\x93NUMPY magic"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(&format!("version {v}"))),
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or_else(|| bad("truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
    if !header.contains("'descr': '<f4'") {
        return Err(bad("dtype must be little-endian float32 ('<f4')"));
    }
    if header.contains("'fortran_order': True") {
        return Err(bad("Fortran order is not supported"));
    }
    let shape = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let dims: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad("shape is not numeric")))
        .collect::<Result<_>>()?;
    let [rows, dim] = dims[..] else {
        return Err(bad("shape must be 2-D"));
    };
    let body = &bytes[start + header_len..];
    if body.len() != rows * dim * 4 {
        return Err(bad(&format!(
            "body is {} bytes, shape ({rows}, {dim}) needs {}",
            body.len(),
            rows * dim * 4
        )));
    }
    let data = crate::codec::f32_from_le(body)?;
    Ok(Matrix { rows, dim, data })
}

pub fn load(path: &Path) -> Result<Matrix> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::io(format!("reading {}: {e}", path.display())))?;
    parse(&bytes).map_err(|e| e.context(path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(shape: &str, descr: &str, body: &[u8]) -> Vec<u8> {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn parses_f32_matrix_and_rejects_others() {
        let body = crate::codec::f32_to_le(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let m = parse(&npy("(2, 3)", "<f4", &body)).unwrap();
        assert_eq!((m.rows, m.dim), (2, 3));
        assert_eq!(m.row(1), &[4.0, 5.0, 6.0]);
        assert!(parse(&npy("(2, 3)", "<f8", &body)).is_err());
        assert!(parse(&npy("(2, 4)", "<f4", &body)).is_err());
        assert!(parse(b"garbage").is_err());
    }

    #[test]
    fn reads_the_shared_minilm_set_when_present() {
        let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/data/minilm-dev/base.npy");
        if let Ok(m) = load(&p) {
            assert_eq!((m.rows, m.dim), (10_000, 384));
            let norm: f32 = m.row(0).iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-3, "rows are unit-norm: {norm}");
        }
    }
}
