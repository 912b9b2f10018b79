// Package cognito adapts the Cognito Identity Provider JSON API
// (X-Amz-Target: AWSCognitoIdentityProviderService.<Op>) to the userpool
// package. It is a thin translation layer: shapes in, shapes out, and
// userpool errors mapped to Cognito exception types.
package cognito
