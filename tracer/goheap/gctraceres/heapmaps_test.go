package gctraceres

import (
	"reflect"
	"testing"
)

// A /proc/self/maps of Go 1.25 on a kernel with PR_SET_VMA_ANON_NAME
// (shape as in the runtime's decoratemappings_test.go), trimmed.
const namedMaps = `00400000-00579000 r-xp 00000000 fd:01 1234                               /tmp/prog
c000000000-c000400000 rw-p 00000000 00:00 0                          [anon: Go: heap]
c000400000-c004000000 ---p 00000000 00:00 0                          [anon: Go: heap reservation]
7f2fa0800000-7f2fa2800000 rw-p 00000000 00:00 0                      [anon: Go: page alloc index]
7ffe2cc67000-7ffe2cc88000 rw-p 00000000 00:00 0                          [stack]
`

// The same process on a kernel without names: only the hint region tells.
const plainMaps = `00400000-00579000 r-xp 00000000 fd:01 1234                               /tmp/prog
c000000000-c000400000 rw-p 00000000 00:00 0
c000400000-c004000000 ---p 00000000 00:00 0
7f2fa0800000-7f2fa2800000 rw-p 00000000 00:00 0
`

// Go 1.26 with a randomised heap base and no names: the probe's mapping.
const randomMaps = `cb488000000-cb489800000 ---p 00000000 00:00 0
cb489800000-cb489c00000 rw-p 00000000 00:00 0
7f55c5d60000-7f55c5f00000 rw-p 00000000 00:00 0
`

func TestHeapMappings(t *testing.T) {
	for _, c := range []struct {
		name, maps string
		probe      uintptr
		want       []addrRange
		from       string
	}{
		{"named", namedMaps, 0xc000001000, []addrRange{{0xc000000000, 0xc000400000}}, "maps: mappings named [anon: Go: heap] by the runtime"},
		{"hint", plainMaps, 0xc000001000, []addrRange{{0xc000000000, 0xc000400000}, {0xc000400000, 0xc004000000}}, "maps: mappings in the heap hint region from 0xc000000000"},
		{"probe", randomMaps, 0xcb489b00000, []addrRange{{0xcb489800000, 0xcb489c00000}}, "maps: the mapping that holds a heap object"},
		{"none", randomMaps, 0x1000, nil, "none: no heap mapping found in /proc/self/maps"},
	} {
		got, from := heapMappings([]byte(c.maps), c.probe, nil)
		if !reflect.DeepEqual(got, c.want) || from != c.from {
			t.Errorf("%s: got %x %q, want %x %q", c.name, got, from, c.want, c.from)
		}
	}
}

func TestMappingName(t *testing.T) {
	for line, want := range map[string]string{
		"c000000000-c000400000 rw-p 00000000 00:00 0                          [anon: Go: heap]": "[anon: Go: heap]",
		"c000400000-c004000000 ---p 00000000 00:00 0":                                           "",
		"00400000-00579000 r-xp 00000000 fd:01 1234                               /tmp/prog":    "/tmp/prog",
	} {
		if got := mappingName([]byte(line)); got != want {
			t.Errorf("mappingName(%q) = %q, want %q", line, got, want)
		}
	}
}
