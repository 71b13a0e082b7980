package scenario

// eventSpec says which event a stimulus makes its device publish, so that delivered and latency
// expectations can pair each stimulus with its result. Key, when set, is the payload field that
// carries the stimulus's own value (the card swiped, the plate read); otherwise stimuli and events
// of one device are paired in order.
type eventSpec struct {
	Type string // evt/{Type}
	Key  string // payload field equal to the stimulus parameter of the same name
}

var stimulusEvents = map[string]eventSpec{
	"card":          {Type: "card", Key: "card"},
	"passage":       {Type: "passage"},
	"vehicle_leave": {Type: "passage"},
	"motion":        {Type: "motion"},
	"plate":         {Type: "plate", Key: "plate"},
}

func eventFor(stimulus string) (eventSpec, bool) {
	e, ok := stimulusEvents[stimulus]
	return e, ok
}
