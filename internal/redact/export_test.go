package redact

// Reset forgets every registered secret (fuzz targets register one each).
func Reset() {
	mu.Lock()
	defer mu.Unlock()
	grams = map[string]struct{}{}
	shorts = nil
}
