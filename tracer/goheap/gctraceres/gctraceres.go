// Package gctraceres writes a Go heap dump together with a residency file,
// the two inputs of `gctrace import go-heapdump`.
//
// A heap dump (runtime/debug.WriteHeapDump) lists every allocated object,
// its pointer fields and the roots, but says nothing about which pages of
// the heap are in RAM or what the page allocator thinks of them. This
// package adds that, for the heap's address ranges only:
//
//   - resident: the present bit of /proc/self/pagemap, except that a page
//     mapping the kernel's shared zero page (memory read but never written)
//     counts as not resident. The zero page is recognised through
//     /proc/kpageflags (KPF_ZERO_PAGE, bit 24, which also covers the huge
//     zero page) when it is readable, else by comparing PFNs with the PFN of
//     a freshly read anonymous page; both need root, since unprivileged
//     readers see PFN 0. The file says which method was used.
//   - state: used (the runtime page belongs to a span), free (free, never
//     returned to the OS) or released (scavenged), read from the runtime's
//     page allocator (runtime.mheap_.pages, found in the ELF symbol table) on
//     Go 1.19 and 1.21 to 1.27 on linux/amd64 (see pagealloc.go), inferred
//     from residency elsewhere.
//   - smaps: Rss and LazyFree of the heap's mappings (LazyFree is memory
//     returned with MADV_FREE that the kernel has not reclaimed yet).
//
// The residency is read before and after the dump, with the collector
// switched off, and the whole snapshot is retried until the two readings
// agree (the background scavenger may release pages meanwhile).
//
// Use: call Dump() where the heap is interesting, or OnSignal(syscall.SIGUSR1)
// once and send the signal. Paths come from $GCTRACE_HEAPDUMP (default
// heap.dump) and $GCTRACE_RESIDENCY (default <dump>.residency.json);
// `gctrace record-go` sets both. Standard library only.
package gctraceres

import (
	"encoding/binary"
	"errors"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"unsafe"
)

const (
	runtimePageSize = 8192
	maxAttempts     = 20
	kpfZeroPage     = 24
	pfnMask         = (1 << 55) - 1
)

// PageRun is a run of consecutive OS pages with the same attributes, as in
// the "pages" section of a gctrace dump.
type PageRun struct {
	Addr     uint64
	N        int
	Resident bool
	State    string
}

// Residency is the content of the residency file; encode writes it, under
// the key names given beside each field.
type Residency struct {
	Format      string            // format: "gctrace.residency"
	Version     int               // version: 1
	GoVersion   string            // go_version: runtime.Version()
	PageSize    int               // page_size: the OS page size
	Madvise     string            // madvise: "free" or "dontneed"
	PageState   string            // page_state: how page states were learnt
	ZeroPage    string            // zero_page: how the zero page was recognised
	ZeroPages   int               // zero_pages: present pages mapping it
	Attempts    int               // attempts: snapshots taken until two readings agreed
	Agreed      bool              // agreed: whether they did
	Ranges      [][2]uint64       // ranges: the heap's address ranges
	RangesFrom  string            // ranges_from: where they came from
	ArenaRssKB  int64             // arena_rss_kb: smaps Rss of the heap's mappings
	ArenaLazyKB int64             // arena_lazyfree_kb: smaps LazyFree of them
	RssKB       int64             // rss_kb: VmRSS
	MemStats    map[string]uint64 // memstats: read after the snapshot
	// MemStatsAtDump (memstats_at_dump) is read just before the heap dump,
	// with nothing allocated in between: its HeapObjects and HeapAlloc
	// describe exactly the heap the dump lists (MemStats, read afterwards,
	// counts the residency file's own allocations too).
	MemStatsAtDump map[string]uint64
	ResidentPage   int       // resident_pages
	Pages          []PageRun // pages: runs of {addr, n, resident, state}
}

// encode returns the residency file's JSON text: one key a line, one page
// run a line. It is written by hand so that programs importing this
// package do not link encoding/json (the committed fixture binaries stay
// small).
func (r *Residency) encode() []byte {
	b := []byte("{\n")
	field := func(k string) { b = append(appendString(append(b, ' '), k), ": "...) }
	str := func(k, v string) { field(k); b = append(appendString(b, v), ",\n"...) }
	num := func(k string, v int64) { field(k); b = append(strconv.AppendInt(b, v, 10), ",\n"...) }
	str("format", r.Format)
	num("version", int64(r.Version))
	str("go_version", r.GoVersion)
	num("page_size", int64(r.PageSize))
	str("madvise", r.Madvise)
	str("page_state", r.PageState)
	str("zero_page", r.ZeroPage)
	num("zero_pages", int64(r.ZeroPages))
	num("attempts", int64(r.Attempts))
	field("agreed")
	b = append(strconv.AppendBool(b, r.Agreed), ",\n"...)
	field("ranges")
	b = append(b, '[')
	for i, rg := range r.Ranges {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = append(strconv.AppendUint(append(strconv.AppendUint(append(b, '['), rg[0], 10), ", "...), rg[1], 10), ']')
	}
	b = append(b, "],\n"...)
	str("ranges_from", r.RangesFrom)
	num("arena_rss_kb", r.ArenaRssKB)
	num("arena_lazyfree_kb", r.ArenaLazyKB)
	num("rss_kb", r.RssKB)
	field("memstats")
	b = append(AppendStats(b, r.MemStats), ",\n"...)
	field("memstats_at_dump")
	b = append(AppendStats(b, r.MemStatsAtDump), ",\n"...)
	num("resident_pages", int64(r.ResidentPage))
	field("pages")
	b = append(b, "[\n"...)
	for i, p := range r.Pages {
		b = strconv.AppendUint(append(b, `  {"addr": `...), p.Addr, 10)
		b = strconv.AppendInt(append(b, `, "n": `...), int64(p.N), 10)
		b = strconv.AppendBool(append(b, `, "resident": `...), p.Resident)
		b = append(appendString(append(b, `, "state": `...), p.State), '}')
		if i < len(r.Pages)-1 {
			b = append(b, ',')
		}
		b = append(b, '\n')
	}
	return append(b, " ]\n}\n"...)
}

// statKeys are the MemStats fields a residency file records, in order.
var statKeys = []string{"HeapAlloc", "HeapObjects", "HeapSys", "HeapIdle", "HeapInuse", "HeapReleased",
	"StackInuse", "Sys", "NumGC"}

// AppendStats appends m (from MemStatsMap) as a JSON object.
func AppendStats(b []byte, m map[string]uint64) []byte {
	b = append(b, '{')
	for i, k := range statKeys {
		if i > 0 {
			b = append(b, ", "...)
		}
		b = strconv.AppendUint(append(appendString(b, k), ": "...), m[k], 10)
	}
	return append(b, '}')
}

// appendString appends s as a JSON string.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// Dump writes a heap dump and its residency file to the paths named by
// $GCTRACE_HEAPDUMP and $GCTRACE_RESIDENCY.
func Dump() error {
	_, err := Snapshot(Paths())
	return err
}

// Paths returns the heap-dump and residency paths Dump writes to.
func Paths() (dump, residency string) {
	dump = os.Getenv("GCTRACE_HEAPDUMP")
	if dump == "" {
		dump = "heap.dump"
	}
	residency = os.Getenv("GCTRACE_RESIDENCY")
	if residency == "" {
		residency = dump + ".residency.json"
	}
	return dump, residency
}

// OnSignal calls Dump each time sig arrives; a failure is reported on stderr.
func OnSignal(sig os.Signal) {
	c := make(chan os.Signal, 1)
	signal.Notify(c, sig)
	go func() {
		for range c {
			if err := Dump(); err != nil {
				os.Stderr.WriteString("gctraceres: " + err.Error() + "\n")
			}
		}
	}()
}

// Snapshot writes the heap dump to dumpPath and the residency file to
// resPath, retrying until the residency read before and after the dump agree.
func Snapshot(dumpPath, resPath string) (*Residency, error) {
	old := debug.SetGCPercent(-1)
	defer debug.SetGCPercent(old)
	r := newReader()
	defer r.close()
	var before, after *reading
	var err error
	var atDump runtime.MemStats
	attempt := 0
	for attempt < maxAttempts {
		attempt++
		if before, err = r.read(0); err != nil {
			return nil, err
		}
		if err = writeHeapDump(dumpPath, &atDump); err != nil {
			return nil, err
		}
		if after, err = r.read(1); err != nil {
			return nil, err
		}
		if before.equal(after) {
			break
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	res := &Residency{
		Format:         "gctrace.residency",
		Version:        1,
		GoVersion:      runtime.Version(),
		PageSize:       os.Getpagesize(),
		Madvise:        madvise(),
		PageState:      after.stateMethod,
		ZeroPage:       r.zeroMethod,
		ZeroPages:      after.zeroPages,
		Attempts:       attempt,
		Agreed:         before.equal(after),
		RangesFrom:     after.rangesFrom,
		ArenaRssKB:     after.rssKB,
		ArenaLazyKB:    after.lazyKB,
		RssKB:          vmRSS(),
		MemStats:       MemStatsMap(&ms),
		MemStatsAtDump: MemStatsMap(&atDump),
		ResidentPage:   after.resident,
		Pages:          append([]PageRun(nil), after.runs...),
	}
	for _, rg := range after.ranges {
		res.Ranges = append(res.Ranges, [2]uint64{uint64(rg.base), uint64(rg.limit)})
	}
	if err := os.WriteFile(resPath, res.encode(), 0o644); err != nil {
		return nil, err
	}
	return res, nil
}

// writeHeapDump writes the runtime's heap dump to path (raw syscalls: no
// allocation on the Go heap besides the path's bytes) and reads ms just
// before, once the file is open, so that nothing is allocated in between.
func writeHeapDump(path string, ms *runtime.MemStats) error {
	fd, err := syscall.Open(path, syscall.O_WRONLY|syscall.O_CREAT|syscall.O_TRUNC|syscall.O_CLOEXEC, 0o644)
	if err != nil {
		return &os.PathError{Op: "create", Path: path, Err: err}
	}
	runtime.ReadMemStats(ms)
	debug.WriteHeapDump(uintptr(fd))
	return syscall.Close(fd)
}

// madvise reports how this runtime returns pages: Go 1.16+ on Linux uses
// MADV_DONTNEED unless GODEBUG has madvdontneed=0 (then MADV_FREE).
func madvise() string {
	advice := "dontneed"
	for _, kv := range strings.Split(os.Getenv("GODEBUG"), ",") {
		if kv == "madvdontneed=0" {
			advice = "free"
		} else if kv == "madvdontneed=1" {
			advice = "dontneed"
		}
	}
	return advice
}

// MemStatsMap returns the MemStats fields a residency file records.
func MemStatsMap(m *runtime.MemStats) map[string]uint64 {
	return map[string]uint64{
		"HeapAlloc": m.HeapAlloc, "HeapObjects": m.HeapObjects, "HeapSys": m.HeapSys,
		"HeapIdle": m.HeapIdle, "HeapInuse": m.HeapInuse, "HeapReleased": m.HeapReleased,
		"StackInuse": m.StackInuse, "Sys": m.Sys, "NumGC": uint64(m.NumGC),
	}
}

// vmRSS returns VmRSS of /proc/self/status in KiB (0 when unreadable).
func vmRSS() int64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			v, _ := strconv.ParseInt(strings.Fields(line)[1], 10, 64)
			return v
		}
	}
	return 0
}

type addrRange struct{ base, limit uintptr }

// reading is one residency measurement of the heap.
type reading struct {
	ranges      []addrRange
	runs        []PageRun
	resident    int
	zeroPages   int
	rssKB       int64
	lazyKB      int64
	stateMethod string
	rangesFrom  string
}

func (a *reading) equal(b *reading) bool {
	if len(a.runs) != len(b.runs) || a.lazyKB != b.lazyKB || len(a.ranges) != len(b.ranges) {
		return false
	}
	for i := range a.runs {
		if a.runs[i] != b.runs[i] {
			return false
		}
	}
	return true
}

// reader measures residency without allocating on the Go heap once it is
// set up (with the collector off, every allocation would change the very
// pages it measures): files are read with raw syscalls into buffers made
// here, and the two readings reuse their slices.
type reader struct {
	pagemap    int // fds, -1 when unavailable
	kpageflags int
	zeroPFN    uint64
	zeroMethod string
	buf        []byte
	word       []byte
	text       []byte
	readings   [2]reading
}

func newReader() *reader {
	r := &reader{pagemap: -1, kpageflags: -1, buf: make([]byte, 1<<16), word: make([]byte, 8), text: make([]byte, 256<<10)}
	for i := range r.readings {
		r.readings[i].runs = make([]PageRun, 0, 1024)
		r.readings[i].ranges = make([]addrRange, 0, 256)
	}
	if fd, err := syscall.Open("/proc/self/pagemap", syscall.O_RDONLY, 0); err == nil {
		r.pagemap = fd
	}
	r.zeroPFN = r.findZeroPFN()
	if fd, err := syscall.Open("/proc/kpageflags", syscall.O_RDONLY, 0); err == nil {
		r.kpageflags = fd
		if r.zeroPFN == 0 || !r.flagZero(r.zeroPFN) {
			syscall.Close(fd)
			r.kpageflags = -1
		}
	}
	switch {
	case r.kpageflags >= 0:
		r.zeroMethod = "kpageflags: KPF_ZERO_PAGE of each present page's PFN (pagemap + /proc/kpageflags)"
	case r.zeroPFN != 0:
		r.zeroMethod = "pfn: present pages with the zero page's PFN " + strconv.FormatUint(r.zeroPFN, 10) +
			" (read from a fresh anonymous page)"
	default:
		r.zeroMethod = "undetected: PFNs unreadable (not root); pages mapping the zero page count as resident"
	}
	return r
}

func (r *reader) close() {
	if r.pagemap >= 0 {
		syscall.Close(r.pagemap)
	}
	if r.kpageflags >= 0 {
		syscall.Close(r.kpageflags)
	}
}

// pread fills b from fd at off, reporting success.
func pread(fd int, b []byte, off int64) bool {
	for len(b) > 0 {
		n, err := syscall.Pread(fd, b, off)
		if err != nil || n <= 0 {
			return false
		}
		b, off = b[n:], off+int64(n)
	}
	return true
}

// findZeroPFN maps an anonymous page, reads it (the kernel maps its shared
// zero page) and returns that page's PFN from pagemap, 0 if unreadable.
func (r *reader) findZeroPFN() uint64 {
	if r.pagemap < 0 {
		return 0
	}
	ps := os.Getpagesize()
	mem, err := syscall.Mmap(-1, 0, ps, syscall.PROT_READ, syscall.MAP_PRIVATE|syscall.MAP_ANON)
	if err != nil {
		return 0
	}
	defer syscall.Munmap(mem)
	if mem[0] != 0 {
		return 0
	}
	addr := uintptr(unsafe.Pointer(&mem[0]))
	if !pread(r.pagemap, r.word, int64(addr/uintptr(ps))*8) {
		return 0
	}
	e := binary.LittleEndian.Uint64(r.word)
	if e>>63 == 0 {
		return 0
	}
	return e & pfnMask
}

func (r *reader) flagZero(pfn uint64) bool {
	return pread(r.kpageflags, r.word, int64(pfn)*8) && binary.LittleEndian.Uint64(r.word)>>kpfZeroPage&1 == 1
}

func (r *reader) isZero(pfn uint64) bool {
	if pfn == 0 {
		return false
	}
	if r.kpageflags >= 0 {
		return r.flagZero(pfn)
	}
	return pfn == r.zeroPFN
}

// read measures the heap into r.readings[slot].
func (r *reader) read(slot int) (*reading, error) {
	out := &r.readings[slot]
	out.runs, out.ranges = out.runs[:0], out.ranges[:0]
	out.resident, out.zeroPages = 0, 0
	if r.pagemap < 0 {
		return out, errors.New("/proc/self/pagemap: cannot open")
	}
	out.stateMethod = pageStateMethod()
	out.ranges = heapRanges(out.ranges)
	out.rangesFrom = "runtime: mheap_.pages.inUse"
	if len(out.ranges) == 0 {
		out.ranges, out.rangesFrom = heapMappings(r.slurp("/proc/self/maps"), uintptr(unsafe.Pointer(&r.buf[0])), out.ranges)
	}
	ps := uintptr(os.Getpagesize())
	for _, rg := range out.ranges {
		for start := rg.base; start < rg.limit; {
			n := int((rg.limit - start) / ps)
			if n > len(r.buf)/8 {
				n = len(r.buf) / 8
			}
			b := r.buf[:n*8]
			if !pread(r.pagemap, b, int64(start/ps)*8) {
				return out, errors.New("/proc/self/pagemap: read failed")
			}
			for i := 0; i < n; i++ {
				addr := start + uintptr(i)*ps
				e := binary.LittleEndian.Uint64(b[i*8:])
				resident := e>>63 == 1
				if resident && r.isZero(e&pfnMask) {
					resident = false
					out.zeroPages++
				}
				state, ok := runtimePageState(addr)
				if !ok {
					state = "released"
					if resident {
						state = "used"
					}
				}
				if resident {
					out.resident++
				}
				out.add(uint64(addr), uint64(ps), resident, state)
			}
			start += uintptr(n) * ps
		}
	}
	out.rssKB, out.lazyKB = r.smaps(out.ranges)
	return out, nil
}

func (o *reading) add(addr, ps uint64, resident bool, state string) {
	if k := len(o.runs) - 1; k >= 0 {
		last := &o.runs[k]
		if last.Addr+uint64(last.N)*ps == addr && last.Resident == resident && last.State == state {
			last.N++
			return
		}
	}
	o.runs = append(o.runs, PageRun{Addr: addr, N: 1, Resident: resident, State: state})
}

// slurp reads a whole /proc file into r.text (truncated at its size).
func (r *reader) slurp(path string) []byte {
	fd, err := syscall.Open(path, syscall.O_RDONLY, 0)
	if err != nil {
		return nil
	}
	defer syscall.Close(fd)
	n := 0
	for n < len(r.text) {
		k, err := syscall.Read(fd, r.text[n:])
		if err != nil || k <= 0 {
			break
		}
		n += k
	}
	return r.text[:n]
}

// smaps sums Rss and LazyFree (KiB) of the mappings that overlap ranges.
func (r *reader) smaps(ranges []addrRange) (rss, lazy int64) {
	text := r.slurp("/proc/self/smaps")
	in := false
	for len(text) > 0 {
		nl := indexByte(text, '\n')
		line := text
		if nl >= 0 {
			line, text = text[:nl], text[nl+1:]
		} else {
			text = nil
		}
		if lo, hi, ok := mapRange(line); ok {
			in = false
			for _, rg := range ranges {
				if lo < rg.limit && rg.base < hi {
					in = true
				}
			}
			continue
		}
		if !in {
			continue
		}
		if v, ok := field(line, "Rss:"); ok {
			rss += v
		} else if v, ok := field(line, "LazyFree:"); ok {
			lazy += v
		}
	}
	return rss, lazy
}

func indexByte(b []byte, c byte) int {
	for i, x := range b {
		if x == c {
			return i
		}
	}
	return -1
}

// field parses "Name:   123 kB" into 123 when line starts with name.
func field(line []byte, name string) (int64, bool) {
	if len(line) < len(name) || string(line[:len(name)]) != name {
		return 0, false
	}
	var v int64
	digits := false
	for _, c := range line[len(name):] {
		if c >= '0' && c <= '9' {
			v = v*10 + int64(c-'0')
			digits = true
		} else if digits {
			break
		}
	}
	return v, digits
}

// mapRange parses the "lo-hi" address range that starts a maps/smaps line.
func mapRange(line []byte) (lo, hi uintptr, ok bool) {
	i := 0
	for ; i < len(line) && hexDigit(line[i]) >= 0; i++ {
		lo = lo<<4 | uintptr(hexDigit(line[i]))
	}
	if i == 0 || i >= len(line) || line[i] != '-' {
		return 0, 0, false
	}
	j := i + 1
	for ; j < len(line) && hexDigit(line[j]) >= 0; j++ {
		hi = hi<<4 | uintptr(hexDigit(line[j]))
	}
	return lo, hi, j > i+1 && j < len(line) && line[j] == ' '
}

func hexDigit(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	}
	return -1
}

// heapMappings appends the heap's mappings found in the text of
// /proc/self/maps and says how it found them:
//   - Go 1.25+ names its anonymous mappings when the kernel supports
//     PR_SET_VMA_ANON_NAME: the heap is "[anon: Go: heap]" (and "[anon: Go:
//     used]"/"[anon: Go: unused]" where pages were remapped, GODEBUG
//     harddecommit); when any is named, those are the heap;
//   - else the mappings in Go's amd64 heap hint region (0xc000000000 and up,
//     1 TiB), where Go 1.25 and earlier put the heap;
//   - else (Go 1.26 randomises the heap's base) the readable mapping that
//     holds probe, an address known to be on the heap.
func heapMappings(maps []byte, probe uintptr, out []addrRange) ([]addrRange, string) {
	var hint, holding []addrRange
	named := len(out)
	for len(maps) > 0 {
		line := maps
		if nl := indexByte(maps, '\n'); nl >= 0 {
			line, maps = maps[:nl], maps[nl+1:]
		} else {
			maps = nil
		}
		lo, hi, ok := mapRange(line)
		if !ok {
			continue
		}
		switch mappingName(line) {
		case "[anon: Go: heap]", "[anon: Go: used]", "[anon: Go: unused]":
			out = append(out, addrRange{lo, hi})
			continue
		}
		if lo >= 0xc000000000 && hi <= 0xc000000000+(1<<40) {
			hint = append(hint, addrRange{lo, hi})
		}
		if lo <= probe && probe < hi {
			holding = append(holding, addrRange{lo, hi})
		}
	}
	switch {
	case len(out) > named:
		return out, "maps: mappings named [anon: Go: heap] by the runtime"
	case len(hint) > 0:
		return append(out, hint...), "maps: mappings in the heap hint region from 0xc000000000"
	case len(holding) > 0:
		return append(out, holding...), "maps: the mapping that holds a heap object"
	}
	return out, "none: no heap mapping found in /proc/self/maps"
}

// mappingName returns the sixth field of a maps line (the path or
// [name]), "" for an anonymous mapping without a name.
func mappingName(line []byte) string {
	field := 0
	for i := 0; i < len(line); {
		for i < len(line) && line[i] == ' ' {
			i++
		}
		if i >= len(line) {
			break
		}
		if field == 5 {
			return string(line[i:])
		}
		for i < len(line) && line[i] != ' ' {
			i++
		}
		field++
	}
	return ""
}
