package harness

import "testing"

// RegisterTaskForTest registers a task family for the rest of test t
// only, so that the families other tests list stay those of harnesstest.
func RegisterTaskForTest(t testing.TB, name string, f TaskFactory) {
	t.Helper()
	RegisterTask(name, "test task of "+t.Name(), f)
	t.Cleanup(func() {
		tasks.mu.Lock()
		defer tasks.mu.Unlock()
		delete(tasks.m, name)
	})
}
