;; counter: the smallest edgeshift service (guest ABI v1, docs/service-abi.md).
;; State: a mutable global (deliberately not exported: the runtime exports it for
;; snapshots) and one memory word that folds the input order in.
(module
  (memory (export "memory") 1)
  (global $count (mut i64) (i64.const 0))

  (func (export "es_abi_version") (result i32) (i32.const 1))
  (func (export "es_buffer") (result i32) (i32.const 1024))
  (func (export "es_buffer_size") (result i32) (i32.const 4096))
  (func (export "es_init") (param $len i32) (result i32) (i32.const 0))

  (func (export "es_input") (param $seq i64) (param $len i32) (result i32)
    (local $fold i64)
    (global.set $count (i64.add (global.get $count) (i64.const 1)))
    ;; fold = fold * 31 + seq + first input byte
    (local.set $fold
      (i64.add
        (i64.mul (i64.load (i32.const 0)) (i64.const 31))
        (i64.add (local.get $seq)
          (if (result i64) (local.get $len)
            (then (i64.load8_u (i32.const 1024)))
            (else (i64.const 0))))))
    (i64.store (i32.const 0) (local.get $fold))
    (i64.store (i32.const 1024) (global.get $count))
    (i64.store (i32.const 1032) (local.get $fold))
    (i32.const 16)))
