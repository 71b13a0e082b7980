package suite_test

import (
	"github.com/onsi/ginkgo/v2"
	"github.com/onsi/gomega"
	"github.com/onsi/gomega/types"
)

func gomegaEqual(v any) types.GomegaMatcher { return gomega.Equal(v) }
func pending() any                          { return ginkgo.Pending }
func label(l string) any                    { return ginkgo.Label(l) }
