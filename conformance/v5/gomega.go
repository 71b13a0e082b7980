package v5

import "github.com/onsi/gomega"

// Matchers used by the checks, named as Gomega names them.
var (
	Equal          = gomega.Equal
	BeFalse        = gomega.BeFalse
	BeTrue         = gomega.BeTrue
	BeNumerically  = gomega.BeNumerically
	HaveLen        = gomega.HaveLen
	ContainElement = gomega.ContainElement
	BeEmpty        = gomega.BeEmpty
	BeElementOf    = gomega.BeElementOf
	ConsistOf      = gomega.ConsistOf
)
