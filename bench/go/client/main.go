// A paced HTTP/1.1 load generator that keeps every request's timing, for the
// latency timeline (bench/timeline.mjs): wrk reports only percentiles of a
// whole run. Each connection sends the next request after an exponentially
// distributed gap (mean conns/rate, so the sum is a Poisson stream), reads
// the answer, and records when the request was written and how long the
// answer took. Not part of scratchd.
//
//	client -addr 127.0.0.1:8080 -rate 50000 -conns 200 -duration 10s \
//	       -requests reqs.json -out times.bin
//
// reqs.json: a JSON array of raw requests ("GET /track?… HTTP/1.1\r\nHost: …\r\n\r\n").
// times.bin: little-endian int64 pairs (write time, Unix ns; latency, ns).
// stdout: one JSON line with the counts.
package main

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8080", "server")
	rate := flag.Float64("rate", 10000, "requests per second, all connections together")
	conns := flag.Int("conns", 200, "connections")
	duration := flag.Duration("duration", 10*time.Second, "how long")
	reqFile := flag.String("requests", "", "JSON array of raw requests")
	out := flag.String("out", "times.bin", "where the timings go")
	flag.Parse()

	var raw []string
	data, err := os.ReadFile(*reqFile)
	if err == nil {
		err = json.Unmarshal(data, &raw)
	}
	if err != nil || len(raw) == 0 {
		fmt.Fprintln(os.Stderr, "client: cannot read requests:", err)
		os.Exit(1)
	}
	reqs := make([][]byte, len(raw))
	for i, r := range raw {
		reqs[i] = []byte(r)
	}

	mean := float64(*conns) / *rate * float64(time.Second)
	start := time.Now()
	end := start.Add(*duration)
	results := make([][]int64, *conns)
	errs := make([]int, *conns)
	var wg sync.WaitGroup
	for c := 0; c < *conns; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			rnd := rand.New(rand.NewSource(int64(c) + 1))
			conn, err := net.Dial("tcp", *addr)
			if err != nil {
				errs[c]++
				return
			}
			defer conn.Close()
			br := bufio.NewReaderSize(conn, 4096)
			rec := make([]int64, 0, 2*int(*rate*duration.Seconds()/float64(*conns)*1.2))
			next := time.Now().Add(time.Duration(rnd.ExpFloat64() * mean))
			for i := c; ; i++ {
				if now := time.Now(); next.After(now) {
					time.Sleep(next.Sub(now))
				} else if now.Sub(next) > time.Second {
					next = now // far behind (a stall): do not send a burst
				}
				if next.After(end) {
					break
				}
				t0 := time.Now()
				if _, err := conn.Write(reqs[i%len(reqs)]); err != nil {
					errs[c]++
					return
				}
				if !readResponse(br) {
					errs[c]++
					return
				}
				rec = append(rec, t0.UnixNano(), int64(time.Since(t0)))
				next = next.Add(time.Duration(rnd.ExpFloat64() * mean))
			}
			results[c] = rec
		}(c)
	}
	wg.Wait()

	f, err := os.Create(*out)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	w := bufio.NewWriter(f)
	n, nerr := 0, 0
	for c, rec := range results {
		n += len(rec) / 2
		nerr += errs[c]
		binary.Write(w, binary.LittleEndian, rec)
	}
	w.Flush()
	f.Close()
	fmt.Printf("{\"requests\":%d,\"errors\":%d,\"seconds\":%.3f}\n", n, nerr, time.Since(start).Seconds())
}

// readResponse reads one answer (status line, headers, Content-Length body).
func readResponse(br *bufio.Reader) bool {
	length := 0
	status := true
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return false
		}
		if status {
			status = false
			if len(line) < 12 || line[9] != '2' {
				return false
			}
			continue
		}
		if len(line) <= 2 {
			break
		}
		if len(line) > 15 && strings.EqualFold(string(line[:15]), "content-length:") {
			length, _ = strconv.Atoi(strings.TrimSpace(string(line[15:])))
		}
	}
	_, err := br.Discard(length)
	return err == nil
}
