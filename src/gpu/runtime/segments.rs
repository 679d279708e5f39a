//! How a tensor larger than one buffer is cut into buffers (segments): fixed-size flat pieces of its bytes in memory order.
//!
//! A tensor's values may pass the device's `max_buffer_size` (2 GiB - 1 on lavapipe), which no
//! single buffer can hold. Such a tensor is stored as consecutive flat segments, each the buffer
//! limit rounded down to whole 4-byte elements, the last one shorter. Flat segments, rather
//! than whole samples per buffer, because they work for every shape alike (1-D biases,
//! weights, either layout, a single sample past the limit), fill each buffer to the limit (the
//! fewest buffers), and cost the copies nothing extra: the splitters already move data as
//! contiguous runs between tensors (`gpu::split::copy`), and a run that crosses a segment boundary is
//! simply cut in two. No kernel binds a segmented tensor: it is past the buffer limit, so past
//! the binding limit (`Gpu::limit_storage_binding` never exceeds the buffer limit), so every op
//! splits it into tiles that are single buffers.

use crate::gpu::Gpu;

/// The most bytes one tensor may hold, in buffers of the device's own `max_buffer_size`
/// (whatever `Gpu::limit_buffer_size` says): 64 GiB on lavapipe. A guard against shapes no
/// device holds, which would otherwise be allocated segment by segment until memory ran out.
pub(crate) const MAX_DEVICE_BUFFERS: u64 = 32;

/// The bytes of each segment but the last for a tensor of `bytes` bytes: `bytes` itself when
/// it fits one buffer.
pub(crate) fn segment_bytes(gpu: &Gpu, bytes: u64) -> u64 {
    let limit = gpu.max_buffer_size();
    if bytes <= limit {
        bytes
    } else {
        (limit / 4 * 4).max(4)
    }
}

/// The lengths in bytes of the segments of a tensor of `bytes` bytes cut every `segment`.
pub(crate) fn lengths(bytes: u64, segment: u64) -> impl Iterator<Item = u64> {
    let count = bytes.div_ceil(segment.max(1));
    (0..count).map(move |i| segment.min(bytes - i * segment))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_cover_the_bytes_with_a_short_last_segment() {
        assert_eq!(lengths(40, 16).collect::<Vec<_>>(), vec![16, 16, 8]);
        assert_eq!(lengths(32, 16).collect::<Vec<_>>(), vec![16, 16]);
        assert_eq!(lengths(12, 12).collect::<Vec<_>>(), vec![12]);
    }
}
