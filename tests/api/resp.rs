//! Just enough of Redis's wire format (RESP2 and RESP3) for a proxy to tell where each value
//! a server sends ends, and which of them are pub/sub pushes.

/// Where the value starting at `at` ends: `None` while it is incomplete, `Err` if what is
/// there is not RESP.
pub fn value_end(buffer: &[u8], at: usize) -> Option<Result<usize, ()>> {
    let kind = *buffer.get(at)?;
    let (header, after) = line(buffer, at + 1)?;
    let count = || std::str::from_utf8(header).ok()?.parse::<i64>().ok();
    match kind {
        b'+' | b'-' | b':' | b'_' | b',' | b'#' | b'(' => Some(Ok(after)),
        b'$' | b'!' | b'=' => match count() {
            Some(length) if length < 0 => Some(Ok(after)),
            Some(length) => {
                let end = after + usize::try_from(length).ok()? + 2;
                (end <= buffer.len()).then_some(Ok(end))
            }
            None => Some(Err(())),
        },
        b'*' | b'>' | b'~' | b'%' | b'|' => {
            let Some(elements) = count() else {
                return Some(Err(()));
            };
            let elements = if matches!(kind, b'%' | b'|') {
                elements * 2
            } else {
                elements
            };
            let mut end = after;
            for _ in 0..elements.max(0) {
                end = match value_end(buffer, end)? {
                    Ok(end) => end,
                    Err(()) => return Some(Err(())),
                };
            }
            Some(Ok(end))
        }
        _ => Some(Err(())),
    }
}

/// The line starting at `at` without its CRLF, and where the next begins.
fn line(buffer: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let length = buffer
        .get(at..)?
        .windows(2)
        .position(|pair| pair == b"\r\n")?;
    Some((&buffer[at..at + length], at + length + 2))
}

/// Whether a whole value is a message pushed to a subscriber (`message`, `pmessage`,
/// `smessage`), as opposed to a command's answer.
pub fn is_push(value: &[u8]) -> bool {
    let Some((_, after)) = line(value, 1) else {
        return false;
    };
    matches!(value[0], b'*' | b'>')
        && [
            &b"$7\r\nmessage\r\n"[..],
            b"$8\r\npmessage\r\n",
            b"$8\r\nsmessage\r\n",
        ]
        .iter()
        .any(|kind| value[after..].starts_with(kind))
}

/// What of `pending` may go on once pushes are dropped: every complete value but the pushes,
/// in order; `pending` keeps what is incomplete. What is not RESP goes on as it is.
pub fn without_pushes(pending: &mut Vec<u8>) -> Vec<u8> {
    let mut kept = Vec::with_capacity(pending.len());
    let mut at = 0;
    while at < pending.len() {
        match value_end(pending, at) {
            Some(Ok(end)) => {
                if !is_push(&pending[at..end]) {
                    kept.extend_from_slice(&pending[at..end]);
                }
                at = end;
            }
            None => break,
            Some(Err(())) => {
                kept.extend_from_slice(&pending[at..]);
                at = pending.len();
            }
        }
    }
    pending.drain(..at);
    kept
}

#[test]
fn pushes_are_dropped_and_answers_kept_whole_across_reads() {
    let stream: &[u8] = b"*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n\
        *3\r\n$7\r\nmessage\r\n$1\r\na\r\n$5\r\nhello\r\n\
        >3\r\n$8\r\nsmessage\r\n$1\r\nb\r\n$-1\r\n\
        +OK\r\n%1\r\n+k\r\n*2\r\n:1\r\n_\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n";
    let mut kept = Vec::new();
    let mut pending = Vec::new();
    for chunk in stream.chunks(5) {
        pending.extend_from_slice(chunk);
        kept.extend(without_pushes(&mut pending));
    }
    assert!(pending.is_empty());
    assert_eq!(
        String::from_utf8(kept).unwrap(),
        "*3\r\n$9\r\nsubscribe\r\n$1\r\na\r\n:1\r\n\
         +OK\r\n%1\r\n+k\r\n*2\r\n:1\r\n_\r\n*2\r\n$4\r\npong\r\n$0\r\n\r\n"
    );
}
