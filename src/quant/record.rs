//! The calibration record stored in `sys` (`quant/<collection>/<generation>`).
//!
//! Version 1: a version byte, the format, dimension and sample size (u32
//! LE), then `lo` and `step` (f32 LE each). Version 2 (int8 with a
//! `centre`): the same, then the centre, one byte a dimension. Records of
//! version 1 still read, with no centre: their codes are stored as they are.

use super::{Quantization, Quantizer};
use crate::error::{Error, Result};

impl Quantizer {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(10 + self.dimension * 9);
        out.push(if self.centre.is_empty() { 1 } else { 2 });
        out.push(self.kind.tag());
        out.extend_from_slice(&(self.dimension as u32).to_le_bytes());
        out.extend_from_slice(&(self.sample as u32).to_le_bytes());
        for x in self.lo.iter().chain(&self.step) {
            out.extend_from_slice(&x.to_le_bytes());
        }
        out.extend_from_slice(&self.centre);
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Quantizer> {
        let bad = |why: &str| Error::corruption(format!("calibration record: {why}"));
        let [version @ (1 | 2), tag, rest @ ..] = bytes else {
            return Err(bad("unknown version or too short"));
        };
        let kind = Quantization::from_tag(*tag).ok_or_else(|| bad("unknown format"))?;
        let (Some(dim), Some(sample)) = (rest.get(0..4), rest.get(4..8)) else {
            return Err(bad("truncated header"));
        };
        let dimension = u32::from_le_bytes(dim.try_into().map_err(|_| bad("header"))?) as usize;
        let sample = u32::from_le_bytes(sample.try_into().map_err(|_| bad("header"))?) as usize;
        let body = &rest[8..];
        let ranges = if kind.calibrated() { dimension * 8 } else { 0 };
        let centre = if *version == 2 {
            if kind != Quantization::Int8 {
                return Err(bad(&format!("a centre for {kind}, which has none")));
            }
            dimension
        } else {
            0
        };
        if body.len() != ranges + centre {
            return Err(bad(&format!(
                "{} bytes of ranges for {dimension} dimensions, expected {}",
                body.len(),
                ranges + centre
            )));
        }
        let all: Vec<f32> = body[..ranges]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let (lo, step) = all.split_at(all.len() / 2);
        Ok(Quantizer {
            kind,
            dimension,
            lo: lo.to_vec(),
            step: step.to_vec(),
            sample,
            centre: body[ranges..].to_vec(),
        })
    }
}
