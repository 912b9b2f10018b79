// Package iam is writ's one policy engine: the AWS IAM policy language
// (identity, session, boundary, resource and trust policies) parsed into
// values that cannot be invalid, and a pure evaluator — explicit deny beats
// allow beats implicit deny — that explains every decision. It does no I/O
// and imports neither net/http nor the store.
package iam
