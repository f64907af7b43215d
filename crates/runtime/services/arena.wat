;; arena: a multiplayer game world (guest ABI v1, docs/service-abi.md).
;; Config (little endian): u32 players (1 to 1024), u32 width, u32 height (16 to 16384 each,
;; width * height at most 256 MiB). Each input moves one player (byte 0: player, byte 1:
;; dx, byte 2: dy, both signed); players that end up next to each other collide and swap
;; velocities; every position a player reaches is painted on the tile map.
(module
  (memory (export "memory") 2)
  (global $players (mut i32) (i32.const 16))
  (global $w (mut i32) (i32.const 256))
  (global $h (mut i32) (i32.const 256))
  (global $tick (mut i64) (i64.const 0))

  (func (export "es_abi_version") (result i32) (i32.const 1))
  (func (export "es_buffer") (result i32) (i32.const 1024))
  (func (export "es_buffer_size") (result i32) (i32.const 4096))

  (func $clamp (param $v i32) (param $hi i32) (result i32)
    (if (i32.lt_s (local.get $v) (i32.const 0)) (then (return (i32.const 0))))
    (if (i32.ge_s (local.get $v) (local.get $hi)) (then (return (i32.sub (local.get $hi) (i32.const 1)))))
    (local.get $v))

  (func $abs (param $v i32) (result i32)
    (select (i32.sub (i32.const 0) (local.get $v)) (local.get $v) (i32.lt_s (local.get $v) (i32.const 0))))

  (func $player (param $i i32) (result i32)
    (i32.add (i32.const 8192) (i32.shl (local.get $i) (i32.const 4))))

  (func $paint (param $x i32) (param $y i32)
    (local $a i32)
    (local.set $a (i32.add (i32.const 65536) (i32.add (i32.mul (local.get $y) (global.get $w)) (local.get $x))))
    (i32.store8 (local.get $a) (i32.add (i32.load8_u (local.get $a)) (i32.const 1))))

  (func (export "es_init") (param $len i32) (result i32)
    (local $pages i32) (local $i i32) (local $p i32)
    (if (i32.ge_u (local.get $len) (i32.const 12))
      (then
        (global.set $players (i32.load (i32.const 1024)))
        (global.set $w (i32.load (i32.const 1028)))
        (global.set $h (i32.load (i32.const 1032)))))
    (if (i32.or (i32.lt_u (global.get $players) (i32.const 1)) (i32.gt_u (global.get $players) (i32.const 1024)))
      (then (return (i32.const 1))))
    (if (i32.or (i32.lt_u (global.get $w) (i32.const 16)) (i32.gt_u (global.get $w) (i32.const 16384)))
      (then (return (i32.const 2))))
    (if (i32.or (i32.lt_u (global.get $h) (i32.const 16)) (i32.gt_u (global.get $h) (i32.const 16384)))
      (then (return (i32.const 2))))
    (if (i64.gt_u (i64.mul (i64.extend_i32_u (global.get $w)) (i64.extend_i32_u (global.get $h)))
                  (i64.const 268435456))
      (then (return (i32.const 2))))
    ;; map at 65536: round up to whole pages
    (local.set $pages
      (i32.sub
        (i32.add (i32.const 1)
          (i32.shr_u (i32.add (i32.mul (global.get $w) (global.get $h)) (i32.const 65535)) (i32.const 16)))
        (memory.size)))
    (if (i32.gt_s (local.get $pages) (i32.const 0))
      (then
        (if (i32.eq (memory.grow (local.get $pages)) (i32.const -1))
          (then (return (i32.const 3))))))
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $i) (global.get $players)))
        (local.set $p (call $player (local.get $i)))
        (i32.store (local.get $p) (i32.rem_u (i32.mul (local.get $i) (i32.const 37)) (global.get $w)))
        (i32.store offset=4 (local.get $p) (i32.rem_u (i32.mul (local.get $i) (i32.const 91)) (global.get $h)))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $next)))
    (i32.const 0))

  (func (export "es_input") (param $seq i64) (param $len i32) (result i32)
    (local $i i32) (local $p i32) (local $x i32) (local $y i32) (local $vx i32) (local $vy i32)
    (local $j i32) (local $q i32) (local $qx i32) (local $qy i32) (local $hits i32) (local $t i32)
    (local.set $i (i32.wrap_i64 (i64.rem_u (local.get $seq) (i64.extend_i32_u (global.get $players)))))
    (local.set $vx (i32.const 1))
    (if (i32.ge_u (local.get $len) (i32.const 1))
      (then (local.set $i (i32.rem_u (i32.load8_u (i32.const 1024)) (global.get $players)))))
    (if (i32.ge_u (local.get $len) (i32.const 2)) (then (local.set $vx (i32.load8_s (i32.const 1025)))))
    (if (i32.ge_u (local.get $len) (i32.const 3)) (then (local.set $vy (i32.load8_s (i32.const 1026)))))
    (local.set $p (call $player (local.get $i)))
    (local.set $x (call $clamp (i32.add (i32.load (local.get $p)) (local.get $vx)) (global.get $w)))
    (local.set $y (call $clamp (i32.add (i32.load offset=4 (local.get $p)) (local.get $vy)) (global.get $h)))
    (i32.store (local.get $p) (local.get $x))
    (i32.store offset=4 (local.get $p) (local.get $y))
    (i32.store offset=8 (local.get $p) (local.get $vx))
    (i32.store offset=12 (local.get $p) (local.get $vy))
    (call $paint (local.get $x) (local.get $y))
    ;; collisions with every other player
    (block $done
      (loop $next
        (br_if $done (i32.ge_u (local.get $j) (global.get $players)))
        (if (i32.ne (local.get $j) (local.get $i))
          (then
            (local.set $q (call $player (local.get $j)))
            (local.set $qx (i32.load (local.get $q)))
            (local.set $qy (i32.load offset=4 (local.get $q)))
            (if (i32.and (i32.le_u (call $abs (i32.sub (local.get $qx) (local.get $x))) (i32.const 1))
                         (i32.le_u (call $abs (i32.sub (local.get $qy) (local.get $y))) (i32.const 1)))
              (then
                (local.set $hits (i32.add (local.get $hits) (i32.const 1)))
                ;; swap velocities, and the other player bounces away
                (local.set $t (i32.load offset=8 (local.get $q)))
                (i32.store offset=8 (local.get $q) (i32.load offset=8 (local.get $p)))
                (i32.store offset=8 (local.get $p) (local.get $t))
                (local.set $t (i32.load offset=12 (local.get $q)))
                (i32.store offset=12 (local.get $q) (i32.load offset=12 (local.get $p)))
                (i32.store offset=12 (local.get $p) (local.get $t))
                (local.set $qx (call $clamp (i32.add (local.get $qx) (i32.load offset=8 (local.get $q))) (global.get $w)))
                (local.set $qy (call $clamp (i32.add (local.get $qy) (i32.load offset=12 (local.get $q))) (global.get $h)))
                (i32.store (local.get $q) (local.get $qx))
                (i32.store offset=4 (local.get $q) (local.get $qy))
                (call $paint (local.get $qx) (local.get $qy))))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $next)))
    (global.set $tick (i64.add (global.get $tick) (i64.const 1)))
    (i32.store (i32.const 1024) (local.get $x))
    (i32.store (i32.const 1028) (local.get $y))
    (i32.store (i32.const 1032) (local.get $hits))
    (i32.store (i32.const 1036) (i32.wrap_i64 (global.get $tick)))
    (i32.const 16)))
