// A Go client for the shim lab: N goroutines each dial HOST:PORT at once and echo one line.
// Prints "echoed K of N in T ms".
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"time"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Println("usage: dialmany HOST:PORT N")
		os.Exit(2)
	}
	n, _ := strconv.Atoi(os.Args[2])
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	t0 := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			c, err := net.DialTimeout("tcp", os.Args[1], 15*time.Second)
			if err != nil {
				fmt.Println("dial failed:", err)
				return
			}
			defer c.Close()
			want := fmt.Sprintf("hello %d\n", i)
			fmt.Fprint(c, want)
			line, err := bufio.NewReader(c).ReadString('\n')
			if err == nil && line == want {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	fmt.Printf("echoed %d of %d in %.1f ms\n", ok, n, float64(time.Since(t0).Microseconds())/1000)
}
