//go:build !(go1.19 && !go1.20 && amd64)

package gctraceres

// Outside Go 1.19 on amd64 the page allocator's layout is unknown here, so
// page states are inferred from residency alone: resident pages are taken
// as used, the others as released. meta says so.

type addrRange struct{ base, limit uintptr }

const pageStateMethod = "inferred: resident pages taken as used, non-resident as released (page allocator layout unknown for this Go version)"

func heapRanges(out []addrRange) []addrRange { return out }

func runtimePageState(addr uintptr) (string, bool) { return "", false }
