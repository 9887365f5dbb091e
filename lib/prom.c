/* prom.c — the metric families and the label escaping of our Prometheus text (see
 * prom.h). The text itself is small enough to write by hand; no library needed. */
#include "prom.h"

const struct prom_family_info prom_families[PROM_N_FAMILIES] = {
	[PROM_BUILD_INFO] = { "emperor_build_info", "gauge",
			      "Always 1: the emperor's version and the features it was built with." },
	[PROM_PROCESS_CPU] = { "process_cpu_seconds_total", "counter",
			       "User and system CPU time of the emperor process, in seconds." },
	[PROM_PROCESS_RSS] = { "process_resident_memory_bytes", "gauge",
			       "Resident memory of the emperor process, in bytes." },
	[PROM_PROCESS_FDS] = { "process_open_fds", "gauge", "Open file descriptors of the emperor process." },
	[PROM_PROCESS_MAX_FDS] = { "process_max_fds", "gauge",
				   "The emperor process's limit on open file descriptors." },
	[PROM_PROCESS_START] = { "process_start_time_seconds", "gauge",
				 "When the emperor process started, in seconds since the Unix epoch." },
	[PROM_VASSALS] = { "emperor_vassals", "gauge", "Vassals by state." },
	[PROM_RESTARTS] = { "emperor_vassal_restarts_total", "counter",
			    "Respawns after a vassal died unasked." },
	[PROM_CONFIG_ERROR] = { "emperor_vassal_config_error", "gauge",
				"1 while the vassal's file failed its last validation (emperorctl status shows why)." },
	[PROM_LAST_RELOAD] = { "emperor_vassal_last_reload_timestamp_seconds", "gauge",
			       "When the vassal's last reload completed, in seconds since the Unix epoch; 0: none yet." },
	[PROM_RELOAD_DURATION] = { "emperor_vassal_reload_duration_seconds", "histogram",
				   "From the reload request to READY=1." },
	[PROM_WORKERS] = { "emperor_vassal_workers", "gauge", "Workers ready, as the master reports them." },
	[PROM_WORKERS_CONFIGURED] = { "emperor_vassal_workers_configured", "gauge",
				      "workers.count of the running config (of a range MIN..MAX, MAX)." },
	[PROM_WORKER_RESPAWNS] = { "emperor_vassal_worker_respawns_total", "counter",
				   "Worker spawns after the first, this master generation." },
	[PROM_GENERATION] = { "emperor_vassal_generation", "gauge",
			      "Reloads of any mode (graceful, chain, workers) since the vassal's master was "
			      "spawned, plus one; a master respawned after a crash starts again at 1." },
	[PROM_CHILDREN] = { "emperor_vassal_children", "gauge", "Running children of the master by kind." },
	[PROM_SPOOL_QUEUED] = { "emperor_spool_queued_tasks", "gauge", "Task files waiting in the spool directory." },
	[PROM_SPOOL_FAILED] = { "emperor_spool_failed_tasks", "gauge",
				"Task files in the spool directory's failed/." },
	[PROM_LEGION_LORD] = { "emperor_legion_lord", "gauge",
			       "1 while this vassal is the lord of the legion." },
	[PROM_LEGION_TRANSITIONS] = { "emperor_legion_transitions_total", "counter",
				      "Times this master became lord of the legion or stopped being it." },
	[PROM_GATEWAY_REQUESTS] = { "emperor_gateway_requests_total", "counter",
				    "Requests a gateway's router answered, by status class." },
	[PROM_GATEWAY_KEY_REQUESTS] = { "emperor_gateway_key_requests_total", "counter",
					"Requests a gateway's router answered, by routing key and status class." },
	[PROM_WORKER_RECYCLES] = { "emperor_vassal_worker_recycles_total", "counter",
				   "Workers recycled or killed for a limit (workers.watchdog, max-rss, "
				   "max-lifetime, stall), by reason." },
	[PROM_LOG_ERROR] = { "emperor_vassal_log_error", "gauge",
			     "1 while the vassal's log file cannot be opened or its last write failed." },
	[PROM_LOG_LOST_LINES] = { "emperor_vassal_log_lost_lines_total", "counter",
				  "Workers' lines the vassal's log file could not take." },
	[PROM_LOG_ROTATIONS] = { "emperor_vassal_log_rotations_total", "counter",
				 "Rotations of the vassal's log file (log.max-size)." },
	[PROM_WORKERS_TARGET] = { "emperor_vassal_workers_target", "gauge",
				  "Workers the master keeps now: workers.count, or with a range "
				  "MIN..MAX the scaling's current target." },
	[PROM_WORKER_SCALINGS] = { "emperor_vassal_worker_scalings_total", "counter",
				   "Workers added (direction up: a sustained accept-queue backlog) or "
				   "removed (down: every accept queue empty for down-after) by scaling." },
	[PROM_ACCEPT_QUEUE] = { "emperor_vassal_accept_queue", "gauge",
				"Scaled vassals only: connections in the longest accept queue of the "
				"workers' sockets at the last sample." },
};

void prom_header(struct strbuf *b, enum prom_family f)
{
	strbuf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", prom_families[f].name, prom_families[f].help,
		      prom_families[f].name, prom_families[f].type);
}

const char *prom_label(const char *s, char *buf, size_t len)
{
	size_t k = 0;

	for (; *s && k + 3 < len; s++) {
		if (*s == '\\' || *s == '"' || *s == '\n')
			buf[k++] = '\\';
		buf[k++] = *s == '\n' ? 'n' : *s;
	}
	buf[k] = '\0';
	return buf;
}
