// Command files runs the demo files service on its own: it accepts only
// tokens bound to its audience (files-service), such as those the gateway
// or the orders service obtain by token exchange.
//
//	go run ./examples/files/cmd/files -issuer http://127.0.0.1:8400/us-east-1_WritDemo1
package main

import (
	"flag"
	"log"
	"net/http"
	"time"

	"github.com/writ-id/writ/examples/files"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8412", "address to listen on")
	issuer := flag.String("issuer", "http://127.0.0.1:8400/us-east-1_WritDemo1", "the user pool's issuer URL")
	flag.Parse()
	h, stop := files.New(*issuer)
	defer stop()
	log.Printf("files: listening on %s", *listen)
	srv := &http.Server{Addr: *listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
