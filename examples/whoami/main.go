// Command whoami is the demo's Lambda-style function: an unmodified
// aws-lambda-go program that answers with the caller's claims as the
// gateway's JWT authorizer passed them (API Gateway payload format 2.0).
package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

func handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	out := map[string]any{"route": req.RouteKey, "request_id": req.RequestContext.RequestID}
	if a := req.RequestContext.Authorizer; a != nil && a.JWT != nil {
		out["claims"] = a.JWT.Claims
	}
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		out["invocation_id"] = lc.AwsRequestID
	}
	b, _ := json.Marshal(out)
	return events.APIGatewayV2HTTPResponse{StatusCode: 200, Headers: map[string]string{"Content-Type": "application/json"}, Body: string(b)}, nil
}

func main() { lambda.Start(handle) }
