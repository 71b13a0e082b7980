package scenario

import (
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/gatehouse-iot/gatehouse/simulator/fault"
)

// ActionKind names what a planned action does.
type ActionKind string

// Planned action kinds.
const (
	ActCommand  ActionKind = "command"
	ActStimulus ActionKind = "stimulus"
	ActFault    ActionKind = "fault"
	ActClear    ActionKind = "clear"
	ActBroker   ActionKind = "broker"
)

// Planned is one action of a run, fixed before the run starts: the same scenario and seed always
// give the same list, which is what makes a run replayable. Its data (cards swiped, plates shown,
// the order in which a load phase visits devices, command correlation ids) comes from the seed.
type Planned struct {
	Index  int           // position in the plan
	Step   int           // the step it belongs to (1-based)
	N      int           // its number within the step, from 0
	At     time.Duration // from the fleet's start
	Kind   ActionKind
	Device string         // empty for broker actions
	Name   string         // command name, stimulus kind, fault kind
	Args   map[string]any // command arguments or stimulus parameters
	Fault  fault.Fault    // for ActFault and ActBroker
	Corr   string         // for commands: the correlation id the ack must carry
}

func (p Planned) String() string {
	switch p.Kind {
	case ActCommand:
		return fmt.Sprintf("command %s to %s (corr %s)%s", p.Name, p.Device, p.Corr, argsText(p.Args))
	case ActStimulus:
		return fmt.Sprintf("stimulus %s at %s%s", p.Name, p.Device, argsText(p.Args))
	case ActFault:
		return fmt.Sprintf("fault %s on %s", p.Fault, p.Device)
	case ActClear:
		return fmt.Sprintf("clear %s on %s", p.Name, p.Device)
	case ActBroker:
		return "broker fault " + p.Fault.String()
	}
	return string(p.Kind)
}

func argsText(args map[string]any) string {
	if len(args) == 0 {
		return ""
	}
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := " ("
	for i, k := range keys {
		if i > 0 {
			s += ", "
		}
		s += fmt.Sprintf("%s=%v", k, args[k])
	}
	return s + ")"
}

// stepRand is the generator of one step: seeded by the scenario's seed and the step's number, so
// that adding a step does not change the data of the others.
func stepRand(seed uint64, step int) *rand.Rand {
	return rand.New(rand.NewPCG(seed, uint64(step)*0x9E3779B97F4A7C15))
}

// Plan lists every action of the scenario with the given seed, in time order (ties keep file
// order).
func Plan(s *Scenario, seed uint64) []Planned {
	var out []Planned
	for _, st := range s.Steps {
		rng := stepRand(seed, st.Index)
		add := func(p Planned) {
			p.Step = st.Index
			out = append(out, p)
		}
		switch a := st.Action.(type) {
		case *Command:
			for i, id := range a.Targets.Resolve(s) {
				add(Planned{At: st.At, Kind: ActCommand, Device: id, Name: a.Name, Args: copyArgs(a.Args), Corr: corrID(seed, st.Index, i)})
			}
		case *Stimulus:
			for _, id := range a.Targets.Resolve(s) {
				add(Planned{At: st.At, Kind: ActStimulus, Device: id, Name: a.Name, Args: stimulusArgs(a.Name, a.Params, rng)})
			}
		case *Fault:
			if a.Broker {
				add(Planned{At: st.At, Kind: ActBroker, Name: a.Fault.Kind, Fault: a.Fault})
				if end := recoveryOf(a.Fault.Kind); end != "" && a.Fault.Duration > 0 {
					add(Planned{At: st.At + a.Fault.Duration, Kind: ActBroker, Name: end, Fault: fault.Fault{Kind: end}})
				}
				break
			}
			for _, id := range a.Targets.Resolve(s) {
				add(Planned{At: st.At, Kind: ActFault, Device: id, Name: a.Fault.Kind, Fault: a.Fault})
			}
		case *Clear:
			for _, id := range a.Targets.Resolve(s) {
				add(Planned{At: st.At, Kind: ActClear, Device: id, Name: a.Kind})
			}
		case *LoadPhase:
			devices := a.Devices
			if len(devices) == 0 {
				devices = s.DevicesOfKind(a.Kind)
			}
			// Visit the devices in a seeded order, round robin, so that each device gets its
			// share and the order is not simply the fleet's.
			order := append([]string(nil), devices...)
			rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
			n := a.Count()
			interval := time.Duration(float64(time.Second) / a.Rate)
			for k := 0; k < n; k++ {
				p := Planned{At: st.At + time.Duration(k)*interval, Device: order[k%len(order)]}
				if a.Command != "" {
					p.Kind, p.Name, p.Args, p.Corr = ActCommand, a.Command, copyArgs(a.Params), corrID(seed, st.Index, k)
				} else {
					p.Kind, p.Name, p.Args = ActStimulus, a.Stimulus, stimulusArgs(a.Stimulus, a.Params, rng)
				}
				add(p)
			}
		}
	}
	perStep := map[int]int{}
	for i := range out {
		out[i].N = perStep[out[i].Step]
		perStep[out[i].Step]++
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At < out[j].At })
	for i := range out {
		out[i].Index = i
	}
	return out
}

// corrID is a command's correlation id: readable, unique within the run and the same on replay.
func corrID(seed uint64, step, k int) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%d", seed)
	return fmt.Sprintf("g%08x-s%d-%d", h.Sum32(), step, k+1)
}

func copyArgs(in map[string]any) map[string]any {
	if len(in) == 0 {
		return nil
	}
	out := make(map[string]any, len(in))
	for k, v := range in {
		out[k] = v
	}
	return out
}

// plateLetters avoids letters that plate formats leave out because they read like digits.
const plateLetters = "ABCDEFGHJKLMNPRSTUVWXYZ"

// stimulusArgs fills in what a stimulus needs and the file did not give: a card number for a
// swipe, a plate for a camera read. Both come from the step's generator, so that every swipe of a
// load phase has its own card and the event it causes can be told apart from the others.
func stimulusArgs(name string, params map[string]any, rng *rand.Rand) map[string]any {
	args := copyArgs(params)
	if args == nil {
		args = map[string]any{}
	}
	switch name {
	case "card":
		if _, ok := args["card"]; !ok {
			args["card"] = fmt.Sprintf("%08X", rng.Uint32())
		}
	case "plate":
		if _, ok := args["plate"]; !ok {
			b := []byte{plateLetters[rng.IntN(len(plateLetters))], plateLetters[rng.IntN(len(plateLetters))]}
			args["plate"] = fmt.Sprintf("%s-%03d", b, rng.IntN(1000))
		}
	}
	if len(args) == 0 {
		return nil
	}
	return args
}
