// Package audit owns writ's audit trail: the Event every component records
// through one Recorder interface, the request information (request id,
// trace id, source address) carried in a context, and the Writer that
// appends events to the store in hash-chained batches, one chain per
// writer stream.
package audit
