package audit

// SetMaxWatch sets how many streams a writer watches for stopped writers,
// for a test, until the test's cleanup.
func SetMaxWatch(t interface{ Cleanup(func()) }, n int) {
	old := maxWatch
	maxWatch = n
	t.Cleanup(func() { maxWatch = old })
}
