//go:build linux

package gctraceres

import (
	"encoding/binary"
	"errors"
	"syscall"
)

// symbolAddress returns the address of the data symbol name, read from the
// ELF symbol table of /proc/self/exe with pread into small buffers (no
// debug/elf, which would add to every binary that imports this package).
// It needs the symbol table, so a binary linked with -s has none, and it
// knows only non-PIE executables, where a symbol's value is its address.
func symbolAddress(name string) (uintptr, error) {
	fd, err := syscall.Open("/proc/self/exe", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return 0, errors.New("/proc/self/exe: cannot open")
	}
	defer syscall.Close(fd)
	le := binary.LittleEndian
	eh := make([]byte, 64)
	if !pread(fd, eh, 0) || string(eh[:4]) != "\x7fELF" || eh[4] != 2 || eh[5] != 1 {
		return 0, errors.New("/proc/self/exe: not a 64-bit little-endian ELF file")
	}
	if le.Uint16(eh[16:]) != 2 { // ET_EXEC
		return 0, errors.New("/proc/self/exe: a position-independent executable (symbol addresses unknown)")
	}
	shoff, shentsize, shnum := int64(le.Uint64(eh[40:])), int64(le.Uint16(eh[58:])), int64(le.Uint16(eh[60:]))
	if shentsize < 64 || shnum == 0 {
		return 0, errors.New("/proc/self/exe: no section headers")
	}
	sh := make([]byte, shentsize*shnum)
	if !pread(fd, sh, shoff) {
		return 0, errors.New("/proc/self/exe: cannot read the section headers")
	}
	want := []byte(name + "\x00")
	got := make([]byte, len(want))
	buf := make([]byte, 24*2730)
	for i := int64(0); i < shnum; i++ {
		s := sh[i*shentsize:]
		if le.Uint32(s[4:]) != 2 { // SHT_SYMTAB
			continue
		}
		off, size, link := int64(le.Uint64(s[24:])), int64(le.Uint64(s[32:])), int64(le.Uint32(s[40:]))
		if link >= shnum {
			break
		}
		stroff := int64(le.Uint64(sh[link*shentsize+24:]))
		for pos := int64(0); pos < size; pos += int64(len(buf)) {
			b := buf
			if size-pos < int64(len(b)) {
				b = b[:size-pos]
			}
			if !pread(fd, b, off+pos) {
				return 0, errors.New("/proc/self/exe: cannot read the symbol table")
			}
			for e := 0; e+24 <= len(b); e += 24 {
				sym := b[e : e+24]
				if sym[4]&0xf != 1 || le.Uint64(sym[16:]) < 1024 { // STT_OBJECT, and mheap_ is big
					continue
				}
				if pread(fd, got, stroff+int64(le.Uint32(sym))) && string(got) == string(want) {
					return uintptr(le.Uint64(sym[8:])), nil
				}
			}
		}
	}
	return 0, errors.New("/proc/self/exe: no symbol " + name + " (a binary linked with -s has no symbol table)")
}
