//go:build !(linux && amd64 && ((go1.19 && !go1.20) || (go1.21 && !go1.28)))

package gctraceres

// Outside the measured versions (Go 1.19 and 1.21 to 1.27, linux/amd64)
// the page allocator's layout is unknown here, so page states are inferred
// from residency alone: resident pages are taken as used, the others as
// released. The residency file says so.

func pageStateMethod() string {
	return "inferred: resident pages taken as used, non-resident as released (page allocator layout unknown for this Go version)"
}

func heapRanges(out []addrRange) []addrRange { return out }

func runtimePageState(addr uintptr) (string, bool) { return "", false }
