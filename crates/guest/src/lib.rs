//! Write an edgeshift service in Rust: implement [`Service`] and call
//! [`export_service!`]; build the crate as a `cdylib` for `wasm32-unknown-unknown`. The
//! macro provides the exports of guest ABI v1 (`docs/service-abi.md`): `memory` (from the
//! toolchain), `es_abi_version`, `es_buffer`, `es_buffer_size`, `es_init`, `es_input`.
//!
//! The crate is `no_std` and allocation-free; the host's imports are [`random`] and
//! [`log`]. Natively (for unit tests) `random` is a fixed mix of its key (the host's is
//! seeded per service) and `log` does nothing: test the service through [`Service`]
//! directly.
//!
//! ```ignore
//! #![cfg_attr(target_arch = "wasm32", no_std)]
//! use edgeshift_guest::{Service, export_service};
//!
//! struct Counter(u64);
//! impl Service for Counter {
//!     fn init(_config: &[u8]) -> Result<Self, i32> { Ok(Counter(0)) }
//!     fn input(&mut self, _seq: u64, _input: &[u8], answer: &mut [u8]) -> Result<usize, i32> {
//!         self.0 += 1;
//!         answer[..8].copy_from_slice(&self.0.to_le_bytes());
//!         Ok(8)
//!     }
//! }
//! export_service!(Counter);
//! ```
#![no_std]

use core::cell::UnsafeCell;

/// Bytes of the I/O buffer: inputs, the configuration and answers fit in it.
pub const BUFFER_SIZE: usize = 64 * 1024;

/// A service: a deterministic state machine over its inputs.
pub trait Service: Sized {
    /// Starts the service from its configuration; an `Err` code refuses it.
    ///
    /// # Errors
    /// A configuration the service does not accept (any non-zero code).
    fn init(config: &[u8]) -> Result<Self, i32>;

    /// Applies input `seq` and writes the answer into `answer`; returns its length.
    ///
    /// # Errors
    /// A negative code: the input is consumed, the user gets an empty answer.
    fn input(&mut self, seq: u64, input: &[u8], answer: &mut [u8]) -> Result<usize, i32>;
}

/// A place in linear memory for the macro's statics. The guest is single-threaded (the
/// host calls one export at a time), which is what makes sharing it sound.
#[doc(hidden)]
pub struct GuestCell<T>(UnsafeCell<T>);

// SAFETY: WebAssembly guests of ABI v1 have no threads; the host never calls two exports
// at once.
unsafe impl<T> Sync for GuestCell<T> {}

impl<T> GuestCell<T> {
    /// A cell holding `v`.
    pub const fn new(v: T) -> Self {
        Self(UnsafeCell::new(v))
    }

    /// The value.
    ///
    /// # Safety
    /// No other reference to the value may be alive: call from one export at a time and
    /// do not keep the reference beyond it.
    #[allow(clippy::mut_from_ref)]
    pub unsafe fn get(&self) -> &mut T {
        // SAFETY: the caller guarantees exclusive access (see above).
        unsafe { &mut *self.0.get() }
    }
}

#[cfg(target_arch = "wasm32")]
#[link(wasm_import_module = "edgeshift")]
unsafe extern "C" {
    #[link_name = "random"]
    fn host_random(key: i64) -> i64;
    #[link_name = "log"]
    fn host_log(ptr: i32, len: i32);
}

/// A pseudo-random number for `key`, the same on every replica of the service (seeded by
/// its code and configuration): use it instead of any other source of randomness.
#[must_use]
pub fn random(key: i64) -> i64 {
    #[cfg(target_arch = "wasm32")]
    {
        // SAFETY: a host import of ABI v1 with this exact signature; it reads nothing of ours.
        unsafe { host_random(key) }
    }
    #[cfg(not(target_arch = "wasm32"))]
    {
        // splitmix64 of the key: deterministic, for native tests.
        let mut z = (key as u64).wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        (z ^ (z >> 31)) as i64
    }
}

/// Debug text for the host's log (hosts may drop it).
pub fn log(msg: &str) {
    #[cfg(target_arch = "wasm32")]
    {
        // SAFETY: the host reads `len` bytes at `ptr` of our memory during the call.
        unsafe { host_log(msg.as_ptr() as i32, msg.len() as i32) }
    }
    #[cfg(not(target_arch = "wasm32"))]
    let _ = msg;
}

/// Exports the ABI v1 functions for the [`Service`] `$ty`.
#[macro_export]
macro_rules! export_service {
    ($ty:ty) => {
        static ES_BUFFER: $crate::GuestCell<[u8; $crate::BUFFER_SIZE]> =
            $crate::GuestCell::new([0; $crate::BUFFER_SIZE]);
        // The answer is written here, then copied into the buffer the input came in.
        static ES_ANSWER: $crate::GuestCell<[u8; $crate::BUFFER_SIZE]> =
            $crate::GuestCell::new([0; $crate::BUFFER_SIZE]);
        static ES_STATE: $crate::GuestCell<Option<$ty>> = $crate::GuestCell::new(None);

        /// ABI version 1.
        #[unsafe(no_mangle)]
        pub extern "C" fn es_abi_version() -> i32 {
            1
        }

        /// Address of the I/O buffer.
        #[unsafe(no_mangle)]
        pub extern "C" fn es_buffer() -> i32 {
            // SAFETY: one export at a time (see `GuestCell`); only the address is taken.
            unsafe { ES_BUFFER.get() }.as_ptr() as usize as i32
        }

        /// Size of the I/O buffer.
        #[unsafe(no_mangle)]
        pub extern "C" fn es_buffer_size() -> i32 {
            $crate::BUFFER_SIZE as i32
        }

        /// Starts the service from the configuration in the buffer.
        #[unsafe(no_mangle)]
        pub extern "C" fn es_init(len: i32) -> i32 {
            // SAFETY: one export at a time (see `GuestCell`).
            let (buf, state) = unsafe { (ES_BUFFER.get(), ES_STATE.get()) };
            let len = (len.max(0) as usize).min(buf.len());
            match <$ty as $crate::Service>::init(&buf[..len]) {
                Ok(s) => {
                    *state = Some(s);
                    0
                }
                Err(code) => code.max(1),
            }
        }

        /// Applies one input from the buffer and writes its answer there.
        #[unsafe(no_mangle)]
        pub extern "C" fn es_input(seq: i64, len: i32) -> i32 {
            // SAFETY: one export at a time (see `GuestCell`); three distinct statics.
            let (buf, answer, state) =
                unsafe { (ES_BUFFER.get(), ES_ANSWER.get(), ES_STATE.get()) };
            let Some(s) = state.as_mut() else {
                return -1;
            };
            let len = (len.max(0) as usize).min(buf.len());
            match s.input(seq as u64, &buf[..len], &mut answer[..]) {
                Ok(k) => {
                    let k = k.min($crate::BUFFER_SIZE);
                    buf[..k].copy_from_slice(&answer[..k]);
                    k as i32
                }
                Err(code) => code.min(-1),
            }
        }
    };
}

/// A panic traps, which consumes the input alike on every replica (feature
/// `panic-handler`, on by default).
#[cfg(all(target_arch = "wasm32", feature = "panic-handler"))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_is_a_function_of_its_key() {
        assert_eq!(random(7), random(7));
        assert_ne!(random(7), random(8));
    }
}
