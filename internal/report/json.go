package report

import (
	"encoding/json"
	"fmt"
	"io"
)

// WriteJSON writes one record as indented JSON with the field names documented in README.md.
func WriteJSON(w io.Writer, r *Record) error {
	if r.Schema == "" {
		r.Schema = SchemaVersion
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	// Messages quote payloads; keep <, > and & readable for people looking at the file.
	enc.SetEscapeHTML(false)
	if err := enc.Encode(r); err != nil {
		return fmt.Errorf("write json record %q: %w", r.Name, err)
	}
	return nil
}

// ReadJSON reads a record written by WriteJSON (to merge shards or re-render a report). Unknown
// fields are refused so that a record of another schema is not silently half-read.
func ReadJSON(rd io.Reader) (*Record, error) {
	dec := json.NewDecoder(rd)
	dec.DisallowUnknownFields()
	var r Record
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("read json record: %w", err)
	}
	if r.Schema != SchemaVersion {
		return nil, fmt.Errorf("read json record: schema %q, want %q", r.Schema, SchemaVersion)
	}
	return &r, nil
}
