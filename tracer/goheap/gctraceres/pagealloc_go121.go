//go:build linux && amd64 && go1.21 && !go1.28

package gctraceres

// runtime.mheap: lock (8 B), then pages.
const (
	pagesOff        = 8
	pageAllocLayout = "go1.21-1.27 amd64 layout (mheap.pages at 8)"
)
