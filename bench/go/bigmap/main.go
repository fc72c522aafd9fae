// bigmap keeps N live 48-byte objects in one map[int64]*T and writes a heap dump:
// the import benchmark's program (bench/import_bench.py), the shape issue 11 measured.
//
//	bigmap heap.dump [N]   (N defaults to 1000000)
package main

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
)

type T struct{ a, b, c, d, e, f int64 }

var m map[int64]*T

func main() {
	n := int64(1000000)
	if len(os.Args) > 2 {
		n, _ = strconv.ParseInt(os.Args[2], 10, 64)
	}
	m = make(map[int64]*T)
	for i := int64(0); i < n; i++ {
		m[i] = &T{a: i}
	}
	runtime.GC()
	f, err := os.Create(os.Args[1])
	if err != nil {
		panic(err)
	}
	debug.WriteHeapDump(f.Fd())
	f.Close()
}
