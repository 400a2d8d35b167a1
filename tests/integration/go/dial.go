// A Go client for the shim lab: dials HOST:PORT and echoes one line. Go's runtime makes its
// socket system calls itself, so the preloaded library cannot see this program's connections;
// the test uses it to show that the wrapper says so.
package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"time"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Println("usage: dial HOST:PORT")
		os.Exit(2)
	}
	c, err := net.DialTimeout("tcp", os.Args[1], 3*time.Second)
	if err != nil {
		fmt.Println("dial failed:", err)
		os.Exit(1)
	}
	defer c.Close()
	fmt.Fprintln(c, "hello from go")
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		fmt.Println("read failed:", err)
		os.Exit(1)
	}
	fmt.Print("echo ", line)
}
