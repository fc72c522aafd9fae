//go:build go1.19 && !go1.20 && amd64

package gctraceres

import (
	"unsafe"
)

// The runtime's page allocator, read through go:linkname (Go 1.19, amd64).
//
// runtime.mheap_ starts with lock (8 B), a uint32 pad, then pages, a
// pageAlloc: summary [5][]pallocSum (120 B), chunks
// [1<<13]*[1<<13]pallocData, searchAddr, start, end chunkIdx, inUse
// addrRanges. The offsets below were read from the DWARF of a go1.19.8
// binary (runtime.mheap.pages = 16, runtime.pageAlloc.chunks = 120,
// .inUse = 65680); tracer/gotypes.py checks them again at import time.
// The variable is declared as a uintptr so that the linker's DWARF for it
// refers to a type the runtime already defines.
//
//go:linkname mheap_ runtime.mheap_
var mheap_ uintptr

const (
	pagesOff         = 16
	chunksOff        = pagesOff + 120
	inUseOff         = pagesOff + 65680
	pallocChunkPages = 512
	pallocChunkBytes = pallocChunkPages * runtimePageSize
	l2Bits           = 13
	arenaBaseOffset  = 0xffff800000000000
)

// pallocData mirrors runtime.pallocData: which runtime pages of a 4 MiB
// chunk are allocated to spans, and which free ones are scavenged
// (returned to the OS).
type pallocData struct {
	alloc     [pallocChunkPages / 64]uint64
	scavenged [pallocChunkPages / 64]uint64
}

type addrRange struct{ base, limit uintptr }

type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

// pageStateMethod names how readPageStates learns page states.
const pageStateMethod = "runtime: mheap_.pages (go:linkname), pallocBits and scavenged bits per 4 MiB chunk, go1.19 amd64 layout"

// heapRanges appends the address ranges the page allocator manages (pageAlloc.inUse).
func heapRanges(out []addrRange) []addrRange {
	h := (*sliceHeader)(unsafe.Add(unsafe.Pointer(&mheap_), inUseOff))
	return append(out, unsafe.Slice((*addrRange)(h.data), h.len)...)
}

// runtimePageState returns the allocator's view of the runtime page at addr:
// "used", "free" or "released"; ok is false outside every chunk.
func runtimePageState(addr uintptr) (state string, ok bool) {
	ci := (addr - arenaBaseOffset) / pallocChunkBytes
	chunks := (*[1 << l2Bits]*[1 << l2Bits]pallocData)(unsafe.Add(unsafe.Pointer(&mheap_), chunksOff))
	l2 := chunks[ci>>l2Bits]
	if l2 == nil {
		return "", false
	}
	d := &l2[ci&(1<<l2Bits-1)]
	i := (addr % pallocChunkBytes) / runtimePageSize
	switch {
	case d.alloc[i/64]>>(i%64)&1 == 1:
		return "used", true
	case d.scavenged[i/64]>>(i%64)&1 == 1:
		return "released", true
	}
	return "free", true
}
