//! The segments of a packed batch, read back from its positions.

/// Pushes into `starts` (cleared first) the start of each segment of the
/// row of `len` tokens at `row` in a batch's flattened positions, last
/// segment first. A segment starts where the position is 0: at each
/// document and row start, and where padding begins.
///
/// The loader writes positions as ramps (0, 1, 2, ... within each segment,
/// padding included), so the segment that holds token `e` starts at
/// `e - pos[e]`: the starts are found walking back from the row's last
/// token, one step per segment, without scanning the row. A position past
/// the row's start (a broken ramp) cuts the segment at the row's start.
///
/// ```
/// // One row: a document piece of 3 tokens, one of 2, then 1 of padding.
/// let pos = [0i64, 1, 2, 0, 1, 0];
/// let mut starts = Vec::new();
/// mosaicrs::tokens::segment_starts(&pos, 0, 6, &mut starts);
/// assert_eq!(starts, [5, 3, 0]);
/// ```
pub fn segment_starts<P: Copy + Into<i64>>(
    pos: &[P],
    row: usize,
    len: usize,
    starts: &mut Vec<usize>,
) {
    starts.clear();
    if len == 0 {
        return;
    }
    let mut last = row + len - 1;
    loop {
        let back = pos
            .get(last)
            .and_then(|&p| usize::try_from(p.into()).ok())
            .unwrap_or(0)
            .min(last - row);
        let start = last - back;
        starts.push(start);
        if start == row {
            break;
        }
        last = start - 1;
    }
}
