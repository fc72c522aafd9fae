//go:build linux && amd64 && ((go1.19 && !go1.20) || (go1.21 && !go1.28))

package gctraceres

import (
	"strconv"
	"unsafe"
)

// The runtime's page allocator, runtime.mheap_.pages (a pageAlloc), read
// through its address in the ELF symbol table of /proc/self/exe (Go 1.23
// and later refuse a go:linkname to runtime.mheap_, so the symbol is looked
// up instead; see symtab.go).
//
// pageAlloc: summary [5][]pallocSum (120 B), chunks
// [1<<13]*[1<<13]pallocData, searchAddr, start, end chunkIdx, inUse
// addrRanges. pallocData is two bitmaps of 512 bits: pallocBits (pages
// allocated to spans) and scavenged (free pages returned to the OS). The
// offsets below were read from the DWARF of mapsdemo built with each of Go
// 1.19.8, 1.21.13, 1.22.10, 1.23.9, 1.24.11 (with and without
// GOEXPERIMENT=noswissmap), 1.25.5, 1.26.6 and 1.27.3: only mheap.pages
// moved (16 in Go 1.19, 8 from Go 1.21: the padding word after mheap.lock
// went away); pageAlloc.chunks = 120, pageAlloc.inUse = 65680 and
// pallocData (128 B) are the same in all of them. chunkIndex is
// (p - arenaBaseOffset) / 4 MiB in all of them too. Go 1.20 was not
// measured and falls back to residency alone (pagealloc_other.go).
const (
	chunksOff        = pagesOff + 120
	inUseOff         = pagesOff + 65680
	pallocChunkPages = 512
	pallocChunkBytes = pallocChunkPages * runtimePageSize
	l2Bits           = 13
	arenaBaseOffset  = 0xffff800000000000
	maxInUseRanges   = 1 << 16
)

// pallocData mirrors runtime.pallocData.
type pallocData struct {
	alloc     [pallocChunkPages / 64]uint64
	scavenged [pallocChunkPages / 64]uint64
}

type sliceHeader struct {
	data     unsafe.Pointer
	len, cap int
}

// mheap is the address of runtime.mheap_, or nil when it could not be
// found or failed the layout check; pageStateProblem then says why.
var (
	mheap            unsafe.Pointer
	pageStateProblem string
	probe            *[64]byte // a heap object for checkLayout (a global, so it cannot live on the stack)
)

func init() {
	addr, err := symbolAddress("runtime.mheap_")
	if err != nil {
		pageStateProblem = err.Error()
		return
	}
	mheap = unsafe.Pointer(addr)
	probe = new([64]byte)
	if msg := checkLayout(uintptr(unsafe.Pointer(probe))); msg != "" {
		mheap, pageStateProblem = nil, msg
	}
	probe = nil
}

// checkLayout checks what the offsets point at: a sane list of in-use
// address ranges, one of which holds p, a freshly allocated heap object,
// whose page the allocator says is used. It returns "" when all holds.
// BUG: it catches a wrong layout only while the words it reads still point
// at readable memory; the build constraints keep it to measured versions.
func checkLayout(p uintptr) string {
	h := (*sliceHeader)(unsafe.Add(mheap, inUseOff))
	if h.data == nil || h.len <= 0 || h.len > h.cap || h.cap > maxInUseRanges {
		return "runtime.mheap_.pages.inUse does not look like a slice (unknown layout)"
	}
	found := false
	for i, r := range unsafe.Slice((*addrRange)(h.data), h.len) {
		if r.base >= r.limit || r.base%pallocChunkBytes != 0 {
			return "runtime.mheap_.pages.inUse: range " + strconv.Itoa(i) + " is not chunk-aligned (unknown layout)"
		}
		found = found || r.base <= p && p < r.limit
	}
	if !found {
		return "runtime.mheap_.pages.inUse holds no range with a fresh heap object (unknown layout)"
	}
	if s, ok := runtimePageState(p); !ok || s != "used" {
		return "the page of a fresh heap object is not used in runtime.mheap_.pages.chunks (unknown layout)"
	}
	return ""
}

// pageStateMethod names how runtimePageState learns page states.
func pageStateMethod() string {
	if mheap == nil {
		return "inferred: resident pages taken as used, non-resident as released (page allocator unreadable: " +
			pageStateProblem + ")"
	}
	return "runtime: mheap_.pages (address from the ELF symbol table), pallocBits and scavenged bits per 4 MiB chunk, " +
		pageAllocLayout
}

// heapRanges appends the address ranges the page allocator manages (pageAlloc.inUse).
func heapRanges(out []addrRange) []addrRange {
	if mheap == nil {
		return out
	}
	h := (*sliceHeader)(unsafe.Add(mheap, inUseOff))
	return append(out, unsafe.Slice((*addrRange)(h.data), h.len)...)
}

// runtimePageState returns the allocator's view of the runtime page at addr:
// "used", "free" or "released"; ok is false outside every chunk.
func runtimePageState(addr uintptr) (state string, ok bool) {
	if mheap == nil {
		return "", false
	}
	ci := (addr - arenaBaseOffset) / pallocChunkBytes
	chunks := (*[1 << l2Bits]*[1 << l2Bits]pallocData)(unsafe.Add(mheap, chunksOff))
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
