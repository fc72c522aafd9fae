//go:build linux && amd64 && go1.19 && !go1.20

package gctraceres

// runtime.mheap: lock (8 B), a uint32 pad, then pages.
const (
	pagesOff        = 16
	pageAllocLayout = "go1.19 amd64 layout (mheap.pages at 16)"
)
