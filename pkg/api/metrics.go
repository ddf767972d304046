package api

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/solo-rt/solo/eventstore"
	"github.com/solo-rt/solo/pkg/solo"
	"github.com/solo-rt/solo/pkg/state"
)

// Metrics are Solo's Prometheus metrics:
//
//   - solo_services{state}: services per state, read from the runtime at
//     scrape time (every state is reported, 0 included);
//   - per service, labelled tenant and name, read from the runtime's world
//     at scrape time, so that a removed service's series go with it (the
//     label sets are bounded by the services that exist):
//     solo_service_up (1 while an instance runs), solo_service_state{state}
//     (one series per state, 1 for the current one: the one-hot form
//     Prometheus recommends over a state label that changes),
//     solo_service_restarts (a gauge: a redeploy resets it; its sum over
//     the services is what the unlabelled solo_service_restarts_total of
//     earlier versions said, a gauge that promtool refuses by its name),
//     solo_service_start_time_seconds (of the running instance, absent when
//     none runs), solo_service_last_exit_code (of the newest recorded exit;
//     -1 for one ended by a signal or that could not start, absent before
//     the first exit or when its status is unknown), and
//     solo_service_ready (1 while an instance runs and is ready: its ready
//     probe passed, or it has none), and for a service with a health
//     check solo_service_healthy (1 while its running instance's last
//     recorded health is healthy, 0 otherwise);
//   - solo_probe_failures_total: health probe tries that failed, of every
//     service (a failure counts here before it makes a service unhealthy);
//   - solo_event_subscribers: live event subscriptions, at scrape time;
//   - solo_events_appended_total and solo_append_commit_seconds: fed by
//     [Metrics.ObserveCommit];
//   - solo_http_requests_total{route,code} and
//     solo_http_request_seconds{route}: every request the [Server] answers,
//     labelled by route pattern ("unmatched" for no route), so the label
//     set stays bounded;
//   - solo_auth_failures_total: requests that [Options.Authorize] refused;
//   - solo_api_rejected_total{tenant,limit}: requests refused by a limit,
//     nothing done: a tenant's quota (max_services, max_sessions,
//     max_tasks) or a request rate (rate_per_tenant, rate_per_token); the
//     label sets are bounded by the tenants and the five limits;
//   - solo_store_writable (1 or 0), solo_store_write_failures_total and
//     solo_store_pending_facts: whether the event log can be written (a
//     full disk makes it 0), the commits the file system refused, and the
//     facts about running services waiting to be recorded.
//
// Nothing polls: the runtime's figures are collected during a scrape. A
// Metrics exists before the runtime does (the store's OnCommit hook must be
// given to solo.Open), so it is bound to the runtime afterwards with
// [Metrics.Bind]; until then the scrape-time metrics are absent.
//
// A Metrics is safe for concurrent use.
type Metrics struct {
	rt       atomic.Pointer[solo.Runtime]
	gatherer prometheus.Gatherer

	appended     prometheus.Counter
	commit       prometheus.Histogram
	requests     *prometheus.CounterVec
	requestTime  *prometheus.HistogramVec
	authFailures prometheus.Counter
	rejections   *prometheus.CounterVec

	servicesDesc    *prometheus.Desc
	svc             serviceDescs
	subscribersDesc *prometheus.Desc
	writableDesc    *prometheus.Desc
	writeFailDesc   *prometheus.Desc
	probeFailDesc   *prometheus.Desc
	pendingDesc     *prometheus.Desc
}

// NewMetrics creates the metrics and registers them with reg. If reg is
// also a [prometheus.Gatherer] (a *prometheus.Registry is), /metrics serves
// everything reg gathers, so a daemon can add its own collectors to it;
// otherwise /metrics serves Solo's metrics alone. A nil reg means a fresh
// registry with the Go runtime and process collectors added. It panics if
// the metrics are already registered with reg, like promauto.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	if reg == nil {
		r := prometheus.NewRegistry()
		r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		reg = r
	}
	m := &Metrics{
		appended: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "solo_events_appended_total",
			Help: "Events appended to the log.",
		}),
		commit: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "solo_append_commit_seconds",
			Help:    "Duration of one group commit of the event log, fsync included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 16), // 100µs to ~3.3s
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "solo_http_requests_total",
			Help: "HTTP requests answered, by route pattern and status code.",
		}, []string{"route", "code"}),
		requestTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "solo_http_request_seconds",
			Help:    "Duration of HTTP requests, by route pattern (streams count until they end).",
			Buckets: prometheus.ExponentialBuckets(0.0001, 4, 10), // 100µs to ~26s
		}, []string{"route"}),
		authFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "solo_auth_failures_total",
			Help: "Requests refused by authorisation.",
		}),
		rejections: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "solo_api_rejected_total",
			Help: "Requests refused by a tenant's quota or a request rate, by tenant and limit.",
		}, []string{"tenant", "limit"}),
		servicesDesc:    prometheus.NewDesc("solo_services", "Services by state.", []string{"state"}, nil),
		svc:             newServiceDescs(),
		subscribersDesc: prometheus.NewDesc("solo_event_subscribers", "Live subscriptions to the event log.", nil, nil),
		writableDesc:    prometheus.NewDesc("solo_store_writable", "1 if the event log can be written, 0 while the file system refuses (a full disk).", nil, nil),
		writeFailDesc:   prometheus.NewDesc("solo_store_write_failures_total", "Commits of the event log that the file system refused.", nil, nil),
		probeFailDesc:   prometheus.NewDesc("solo_probe_failures_total", "Health probe tries that failed, of every service.", nil, nil),
		pendingDesc:     prometheus.NewDesc("solo_store_pending_facts", "Facts about running services waiting for the event log to be writable.", nil, nil),
	}
	cs := []prometheus.Collector{m.appended, m.commit, m.requests, m.requestTime, m.authFailures, m.rejections, (*runtimeCollector)(m)}
	reg.MustRegister(cs...)
	if g, ok := reg.(prometheus.Gatherer); ok {
		m.gatherer = g
	} else {
		own := prometheus.NewRegistry()
		own.MustRegister(cs...)
		m.gatherer = own
	}
	return m
}

// Bind points the scrape-time metrics at rt. It may be called again (with
// nil to unbind).
func (m *Metrics) Bind(rt *solo.Runtime) { m.rt.Store(rt) }

// ObserveCommit records one group commit. It is meant for
// eventstore.Options.OnCommit: it never blocks.
func (m *Metrics) ObserveCommit(cs eventstore.CommitStats) {
	m.appended.Add(float64(cs.Events))
	m.commit.Observe(cs.Took.Seconds())
}

func (m *Metrics) observeRequest(route string, status int, took time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.requestTime.WithLabelValues(route).Observe(took.Seconds())
}

func (m *Metrics) authFailure() { m.authFailures.Inc() }

func (m *Metrics) rejected(tenant, limit string) { m.rejections.WithLabelValues(tenant, limit).Inc() }

func (m *Metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.gatherer, promhttp.HandlerOpts{})
}

// allStates are reported by solo_services even when no service is in them,
// so that a dashboard sees a 0 rather than a gap.
var allStates = []state.State{
	state.StateStarting, state.StateRunning, state.StateBackoff, state.StateExited,
	state.StateFailed, state.StateKilled, state.StateStopped,
}

// runtimeCollector reads the bound runtime at scrape time.
type runtimeCollector Metrics

func (c *runtimeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.servicesDesc
	c.svc.describe(ch)
	ch <- c.subscribersDesc
	ch <- c.writableDesc
	ch <- c.writeFailDesc
	ch <- c.probeFailDesc
	ch <- c.pendingDesc
}

func (c *runtimeCollector) Collect(ch chan<- prometheus.Metric) {
	rt := c.rt.Load()
	if rt == nil {
		return
	}
	counts := make(map[state.State]int, len(allStates))
	for _, st := range allStates {
		counts[st] = 0
	}
	figures := rt.Figures() // a copy: nothing is held while the metrics are sent
	for _, f := range figures {
		counts[f.State]++
		c.svc.collect(ch, f)
	}
	for st, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.servicesDesc, prometheus.GaugeValue, float64(n), string(st))
	}
	ch <- prometheus.MustNewConstMetric(c.subscribersDesc, prometheus.GaugeValue, float64(rt.Store().Stats().Subscribers))
	fault, faulty := rt.StoreFault()
	writable := 1.0
	if faulty {
		writable = 0
	}
	ch <- prometheus.MustNewConstMetric(c.writableDesc, prometheus.GaugeValue, writable)
	ch <- prometheus.MustNewConstMetric(c.writeFailDesc, prometheus.CounterValue, float64(rt.StoreWriteFailures()))
	ch <- prometheus.MustNewConstMetric(c.probeFailDesc, prometheus.CounterValue, float64(rt.ProbeFailures()))
	ch <- prometheus.MustNewConstMetric(c.pendingDesc, prometheus.GaugeValue, float64(fault.Pending))
}

// serviceDescs are the per-service metrics, labelled tenant and name.
type serviceDescs struct {
	up, state, restarts, startTime, lastExit, ready, healthy *prometheus.Desc
}

func newServiceDescs() serviceDescs {
	l := []string{"tenant", "name"}
	return serviceDescs{
		up:        prometheus.NewDesc("solo_service_up", "1 while an instance of the service runs, else 0.", l, nil),
		state:     prometheus.NewDesc("solo_service_state", "1 for the service's current state, 0 for the others.", append(l, "state"), nil),
		restarts:  prometheus.NewDesc("solo_service_restarts", "Restarts of the service's current generation after its instance ended on its own.", l, nil),
		startTime: prometheus.NewDesc("solo_service_start_time_seconds", "Start time of the running instance, in seconds since the epoch.", l, nil),
		lastExit:  prometheus.NewDesc("solo_service_last_exit_code", "Exit code of the service's last recorded exit; -1 if a signal ended it or it could not start.", l, nil),
		ready:     prometheus.NewDesc("solo_service_ready", "1 while the service runs and is ready (its ready probe passed, or it has none), else 0.", l, nil),
		healthy:   prometheus.NewDesc("solo_service_healthy", "For a service with a health check: 1 while its running instance is healthy, else 0.", l, nil),
	}
}

func (d serviceDescs) describe(ch chan<- *prometheus.Desc) {
	for _, desc := range []*prometheus.Desc{d.up, d.state, d.restarts, d.startTime, d.lastExit, d.ready, d.healthy} {
		ch <- desc
	}
}

// collect sends the metrics of one service.
func (d serviceDescs) collect(ch chan<- prometheus.Metric, f state.Figures) {
	gauge := func(desc *prometheus.Desc, v float64, extra ...string) {
		ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, append([]string{f.Tenant, f.Name}, extra...)...)
	}
	up := 0.0
	if f.State == state.StateRunning {
		up = 1
	}
	gauge(d.up, up)
	ready := 0.0
	if f.Ready {
		ready = 1
	}
	gauge(d.ready, ready)
	if f.Checked {
		healthy := 0.0
		if f.Health == state.Healthy {
			healthy = 1
		}
		gauge(d.healthy, healthy)
	}
	for _, st := range allStates {
		v := 0.0
		if st == f.State {
			v = 1
		}
		gauge(d.state, v, string(st))
	}
	gauge(d.restarts, float64(f.Restarts))
	if !f.StartedAt.IsZero() {
		gauge(d.startTime, float64(f.StartedAt.UnixNano())/1e9)
	}
	if f.HasExit && !f.LastExit.Unknown {
		gauge(d.lastExit, float64(f.LastExit.ExitCode))
	}
}
