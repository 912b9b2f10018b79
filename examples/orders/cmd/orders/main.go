// Command orders runs the demo orders service on its own, behind a writ
// gateway whose route forwards the caller's token to it:
//
//	ORDERS_CLIENT_SECRET=orders-demo-secret go run ./examples/orders/cmd/orders \
//	    -issuer http://127.0.0.1:8400/us-east-1_WritDemo1 -files http://127.0.0.1:8412
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/writ-id/writ/examples/orders"
	"github.com/writ-id/writ/sdk"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8411", "address to listen on")
	issuer := flag.String("issuer", "http://127.0.0.1:8400/us-east-1_WritDemo1", "the user pool's issuer URL")
	files := flag.String("files", "http://127.0.0.1:8412", "the files service's URL")
	clientID := flag.String("client-id", "orders-service", "this service's own client, for token exchange (secret from $ORDERS_CLIENT_SECRET)")
	flag.Parse()
	self := sdk.ClientCredentials{TokenURL: strings.TrimRight(*issuer, "/") + "/oauth2/token", ClientID: *clientID,
		ClientSecret: os.Getenv("ORDERS_CLIENT_SECRET")}
	h, stop := orders.New(*issuer, *files, self)
	defer stop()
	log.Printf("orders: listening on %s", *listen)
	srv := &http.Server{Addr: *listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}
	log.Fatal(srv.ListenAndServe())
}
