"""/metrics: llama-server's Prometheus text from the engine's counters. The
throughput gauges are averages since the previous scrape, so the scrape state
lives with the app (one per ServerState), not in a module global."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Scrapes:
    """The counters as the previous scrape saw them."""

    last: tuple = field(default=(0, 0.0, 0, 0.0, 0, 0))

    def text(self, stats, n_busy: int, n_deferred: int) -> str:
        s = stats
        prompt_s, predicted_s = s.prompt.ms / 1000, s.predicted.ms / 1000
        now = (s.prompt.n, prompt_s, s.predicted.n, predicted_s, s.n_decode, s.n_busy_slots_total)
        d_prompt, d_prompt_s, d_pred, d_pred_s, d_decode, d_busy = (a - b for a, b in zip(now, self.last))
        self.last = now
        rows = [
            ("counter", "prompt_tokens_total", "Number of prompt tokens processed.", s.prompt.n),
            ("counter", "prompt_tokens_cached_total", "Number of prompt tokens taken from the cache.",
             s.n_prompt_cached),
            ("counter", "prompt_seconds_total", "Prompt process time", prompt_s),
            ("counter", "tokens_predicted_total", "Number of generation tokens processed.", s.predicted.n),
            ("counter", "tokens_predicted_seconds_total", "Predict process time", predicted_s),
            ("counter", "n_decode_total", "Total number of llama_decode() calls", s.n_decode),
            ("counter", "n_tokens_max", "Largest observed n_tokens.", s.n_tokens_max),
            # pyllama has no speculative decoding: llama-server reports these as 0 when it is off
            ("counter", "spec_decode_num_draft_tokens_total", "Total draft tokens generated.", 0),
            ("counter", "spec_decode_num_accepted_tokens_total",
             "Total draft tokens accepted by the target model.", 0),
            ("counter", "spec_decode_num_drafts_total", "Total speculative decoding verification steps.", 0),
            ("gauge", "prompt_tokens_seconds", "Average prompt throughput in tokens/s.",
             d_prompt / d_prompt_s if d_prompt_s > 0 else 0.0),
            ("gauge", "predicted_tokens_seconds", "Average generation throughput in tokens/s.",
             d_pred / d_pred_s if d_pred_s > 0 else 0.0),
            ("gauge", "requests_processing", "Number of requests processing.", n_busy),
            ("gauge", "requests_deferred", "Number of requests deferred.", n_deferred),
            ("gauge", "n_busy_slots_per_decode", "Average number of busy slots per llama_decode() call",
             d_busy / d_decode if d_decode else 0.0),
        ]
        lines = []
        for kind, name, help_, value in rows:
            lines += [f"# HELP llamacpp:{name} {help_}", f"# TYPE llamacpp:{name} {kind}", f"llamacpp:{name} {value}"]
        return "\n".join(lines) + "\n"
