;; armap: an AR feature map (guest ABI v1, docs/service-abi.md).
;; Config (little endian): u32 size in MiB (1 to 1024), u32 updates per input (1 to 4096).
;; State: 32-byte feature descriptors from offset 65536; each input updates a few of them
;; at pseudo-random places derived from the input and the descriptors already there.
(module
  (memory (export "memory") 2)
  (global $n (mut i32) (i32.const 0))          ;; number of features
  (global $k (mut i32) (i32.const 8))          ;; updates per input
  (global $total (mut i64) (i64.const 0))      ;; updates applied so far

  (func (export "es_abi_version") (result i32) (i32.const 1))
  (func (export "es_buffer") (result i32) (i32.const 1024))
  (func (export "es_buffer_size") (result i32) (i32.const 4096))

  ;; splitmix64 finaliser
  (func $mix (param $z i64) (result i64)
    (local.set $z (i64.mul (i64.xor (local.get $z) (i64.shr_u (local.get $z) (i64.const 30)))
                           (i64.const 0xbf58476d1ce4e5b9)))
    (local.set $z (i64.mul (i64.xor (local.get $z) (i64.shr_u (local.get $z) (i64.const 27)))
                           (i64.const 0x94d049bb133111eb)))
    (i64.xor (local.get $z) (i64.shr_u (local.get $z) (i64.const 31))))

  (func (export "es_init") (param $len i32) (result i32)
    (local $mib i32) (local $pages i32)
    (local.set $mib (i32.const 1))
    (if (i32.ge_u (local.get $len) (i32.const 8))
      (then
        (local.set $mib (i32.load (i32.const 1024)))
        (global.set $k (i32.load (i32.const 1028)))))
    (if (i32.or (i32.lt_u (local.get $mib) (i32.const 1)) (i32.gt_u (local.get $mib) (i32.const 1024)))
      (then (return (i32.const 1))))
    (if (i32.or (i32.lt_u (global.get $k) (i32.const 1)) (i32.gt_u (global.get $k) (i32.const 4096)))
      (then (return (i32.const 2))))
    ;; 16 pages per MiB, on top of the 1 page of header and buffer
    (local.set $pages (i32.sub (i32.add (i32.mul (local.get $mib) (i32.const 16)) (i32.const 1))
                               (memory.size)))
    (if (i32.gt_s (local.get $pages) (i32.const 0))
      (then
        (if (i32.eq (memory.grow (local.get $pages)) (i32.const -1))
          (then (return (i32.const 3))))))
    (global.set $n (i32.mul (local.get $mib) (i32.const 32768)))
    (i32.const 0))

  (func (export "es_input") (param $seq i64) (param $len i32) (result i32)
    (local $seed i64) (local $h i64) (local $i i32) (local $addr i32) (local $acc i64) (local $old i64)
    (local.set $seed (local.get $seq))
    (if (i32.ge_u (local.get $len) (i32.const 8))
      (then (local.set $seed (i64.xor (local.get $seed) (i64.load (i32.const 1024))))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (global.get $k)))
        (local.set $h (call $mix (i64.add (local.get $seed)
                                          (i64.mul (i64.extend_i32_u (local.get $i)) (i64.const 0x9e3779b97f4a7c15)))))
        ;; feature index from the hash, address of its descriptor
        (local.set $addr (i32.add (i32.const 65536)
          (i32.shl (i32.wrap_i64 (i64.rem_u (i64.shr_u (local.get $h) (i64.const 11))
                                            (i64.extend_i32_u (global.get $n))))
                   (i32.const 5))))
        (local.set $old (i64.load (local.get $addr)))
        (i64.store (local.get $addr) (local.get $h))
        (i64.store offset=8 (local.get $addr) (i64.xor (i64.rotl (local.get $h) (i64.const 13)) (local.get $seq)))
        (i64.store offset=16 (local.get $addr) (i64.add (i64.load offset=16 (local.get $addr)) (i64.const 1)))
        (i64.store offset=24 (local.get $addr) (i64.xor (local.get $old) (local.get $h)))
        (local.set $acc (i64.xor (local.get $acc) (i64.xor (local.get $old) (local.get $h))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (global.set $total (i64.add (global.get $total) (i64.extend_i32_u (global.get $k))))
    (i64.store (i32.const 1024) (local.get $acc))
    (i64.store (i32.const 1032) (global.get $total))
    (i32.const 16)))
