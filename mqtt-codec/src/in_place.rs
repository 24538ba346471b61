//! Writing a measured packet straight into the spare room of the caller's buffer: one of
//! the codec's two places with `unsafe` code (the other is `ascii`).
//!
//! `BufMut` offers two ways to write. One call per field (`put_u8`, `put_slice`) checks
//! the buffer's room each time and, for a growable buffer, is a call of its own; writing
//! into a stack buffer first and handing it over in one call means zeroing the stack
//! buffer and copying everything twice. Writing into the buffer's spare room and then
//! declaring those bytes written (`advance_mut`) does neither, and that declaration is
//! `unsafe`: the benchmark in the README ("Encoding in place") shows what it gives.
#![allow(unsafe_code)]

use core::mem::MaybeUninit;

use bytes::BufMut;

use crate::EncodeError;

/// Checks that `buf` can take `needed` more bytes, before anything is written.
#[inline]
pub(crate) fn check_room(buf: &impl BufMut, needed: usize) -> Result<(), EncodeError> {
    if buf.remaining_mut() < needed {
        return Err(EncodeError::BufferTooSmall {
            needed,
            available: buf.remaining_mut(),
        });
    }
    Ok(())
}

/// Writes exactly `len` bytes with `write` into the spare room of `buf`'s current chunk
/// and counts them as written. Returns `false`, with nothing counted as written, when
/// that chunk holds fewer than `len` bytes; the caller then writes another way.
///
/// `write` sees a slice of exactly `len` bytes, written from its start through `BufMut`
/// (which never reads). A `write` that goes past the end panics, as writing past the end
/// of a slice does; one that stops short panics here before anything is counted. Either
/// is a bug in the encoder's measuring, never a result of what a peer sent.
#[inline]
pub(crate) fn write_in_place<B: BufMut + ?Sized>(
    buf: &mut B,
    len: usize,
    write: impl FnOnce(&mut &mut [MaybeUninit<u8>]),
) -> bool {
    let chunk = buf.chunk_mut();
    if chunk.len() < len {
        return false;
    }
    // SAFETY: the slice is written only through `BufMut for &mut [MaybeUninit<u8>]`,
    // which copies initialised bytes into it and never reads from it: the two things
    // `as_uninit_slice_mut` forbids.
    let room = unsafe { &mut chunk.as_uninit_slice_mut()[..len] };
    let mut rest = room;
    write(&mut rest);
    assert!(
        rest.is_empty(),
        "an encoder wrote fewer bytes than it measured"
    );
    // SAFETY: the first `len` bytes of the chunk are initialised: `rest` is what the
    // writer had not written, and it is empty. `len` is within the chunk, so within
    // `remaining_mut`.
    unsafe { buf.advance_mut(len) };
    true
}

/// Writes a packet of a few fixed bytes: in place if the chunk has the room, else checked
/// and put in one call. Nothing is written on an error.
#[inline(always)]
pub(crate) fn put_array<const N: usize>(
    buf: &mut impl BufMut,
    bytes: [u8; N],
) -> Result<(), EncodeError> {
    if write_in_place(buf, N, |w| w.put_slice(&bytes)) {
        return Ok(());
    }
    check_room(buf, N)?;
    buf.put_slice(&bytes);
    Ok(())
}
