"""Every result file as a typed record (ncmargin.store.record): analysis, verdicts, sweep, figures index.

Each key is documented here once; docs/results.md embeds the tables generated from these classes
(``python -c "from ncmargin.store.records import results_markdown as m; print(m())"``; a test keeps the
two equal). Floats may be null where the value
is undefined (NaN/inf are written as null).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .record import F, Record, describe

__all__ = [
    "VERDICT_VALUES",
    "AlignmentPower",
    "Analysis",
    "AnalysisOptions",
    "AnalysisSettings",
    "CheckpointAnalysis",
    "ErrorChange",
    "FigureEntry",
    "FiguresIndex",
    "FrozenComplexity",
    "SeriesResolution",
    "SvmComparison",
    "Sweep",
    "SweepRun",
    "Verdict",
    "Verdicts",
    "results_markdown",
]

VERDICT_VALUES = ("pass", "fail", "inconclusive")
Num = float | None  # a float, null where undefined

# ----------------------------------------------------------------------------------------- analysis


class AnalysisSettings(Record):
    """Settings of an analysis; checkpoint entries are reused only when these are equal."""

    svm_tol: float = F("solver tolerance of the hard-margin SVM (ncmargin.solvers.multiclass_svm)")
    delta: float = F("confidence level delta of the margin bound (docs/theory.md §5)")
    spectral: bool = F("whether the whole-network spectral complexity was computed")
    version: int = F("analysis version (entries of another version are recomputed)")
    svm_epochs: str | list[int] = F("where the SVM is solved: 'terminal', 'all' or a list of epochs")


@dataclass(frozen=True)
class AnalysisOptions:
    """What an analysis is asked for, with the defaults: the ``analysis`` section of a verify preset (read with
    ncmargin.store.settings_from: an unknown key is an error listing these), the keywords of
    ncmargin.empirical.analysis.analyze_run and the options of ``ncmargin analyze``. Each field is documented
    in :class:`AnalysisSettings`, the record of the same options stored in analysis.json."""

    svm_tol: float = 1e-8
    svm_epochs: str | list[int] = "terminal"
    spectral: bool = True
    delta: float = 0.05

    def record(self, version: int) -> AnalysisSettings:
        """The :class:`AnalysisSettings` stored with an analysis of version ``version`` (epochs sorted)."""
        se = self.svm_epochs
        return AnalysisSettings(svm_tol=self.svm_tol, delta=self.delta, spectral=bool(self.spectral), version=version,
                                svm_epochs=se if isinstance(se, str) else sorted(int(e) for e in se))


class FrozenComplexity(Record):
    """Last-layer Rademacher bound at the first terminal-phase checkpoint (the paper's Cor. 4.5 reading)."""

    epoch: int = F("the checkpoint epoch it was computed at")
    rademacher: float = F("last-layer Rademacher bound R_N there (docs/theory.md §5)")


class SvmComparison(Record):
    """Claim 1c at one checkpoint: the hard-margin SVM W* on the train features against the trained W."""

    status: str = F("solver status ('optimal', or 'inaccurate' with the numbers as they are)")
    objective: float = F("SVM objective ½‖[W*|b*]‖²_F")
    svm_margin: float = F("1/‖[W*|b*]‖_F, the geometric margin of the SVM")
    angle_deg: Num = F("angle between the trained [W|b] and [W*|b*], degrees (docs/theory.md §4)")
    margin_ratio: Num = F("(p_min(W,H)/‖[W|b]‖_F) / (1/‖[W*|b*]‖_F) (docs/theory.md §4)")
    duality_gap: Num = F("certified relative duality gap of the SVM solution")
    max_violation: Num = F("largest margin-constraint violation of the SVM solution")
    n_support: int = F("number of support vectors")
    seconds: float = F("solver wall time")
    bias: bool = F("whether a bias was used (the SVM then runs on [H | 1], bias regularized)")


class CheckpointAnalysis(Record):
    """One checkpoint's entry in analysis.json, computed in float64 from the saved features and classifier."""

    epoch: int | None = F("checkpoint epoch")
    train_acc: float = F("train accuracy recomputed from the features and classifier (a fraction)")
    test_acc: float = F("test accuracy (a fraction)")
    train_error: float = F("1 − train_acc")
    test_error: float = F("1 − test_acc")
    gap: float = F("test_error − train_error")
    train_loss: Num = F("train CE loss, stable float64 (docs/theory.md §2)")
    test_loss: Num = F("test CE loss")
    p_min: float = F("minimum train margin p_min = min_i (z_{i,y_i} − max_{k≠y_i} z_{i,k}) (docs/theory.md §2)")
    normalized_margin: Num = F("p_min / (‖W‖_F · max_i ‖h_i‖): the bias enters p_min only, not the "
                               "normalizer (docs/theory.md §2)")
    weight_norm: float = F("‖[W|b]‖_F (‖W‖_F without a bias)")
    feature_norm_max: float = F("max_i ‖[h_i|1]‖ (max_i ‖h_i‖ without a bias)")
    num_train: int = F("number of train samples")
    num_test: int = F("number of test samples")
    num_classes: int = F("number of classes K")
    svm: SvmComparison | None = F("claim 1c comparison; null when the SVM was not solved (see svm_error)")
    svm_error: str | None = F("why svm is null: 'skipped: ...' (not a selected epoch) or the solver's "
                              "NotSeparableError message")
    nc: dict[str, Any] = F("ncmargin.theory.nc_metrics output (nc1_topk, nc1_pinv, nc2_*, nc3_self_duality, "
                           "nc4_ncc_mismatch, cdnv, ...) or {'error': str}")
    bound: dict[str, Any] = F("margin bound (docs/theory.md §5): {'delta', 'last_layer': V, 'spectral': V | "
                              "{'error'}, 'frozen': V}; V = {'rademacher', 'Gamma', 'at_pmin': terms | null, "
                              "'at_pmin_error', 'best': terms, 'complexity' (spectral), 'frozen_at_epoch' "
                              "(frozen)}; terms = ncmargin.theory.bounds.margin_bound output")
    file_signature: list[int] | None = F("[size, mtime_ns] of the checkpoint file (reuse check)", None)
    seconds: Num = F("wall time of this entry", None)
    terminal: bool = F("onset_epoch is not null and epoch >= onset_epoch", False)


class Analysis(Record):
    """RUN/analysis.json: the per-checkpoint analysis of one run (ncmargin analyze, verify)."""

    SCHEMA = "ncmargin.analysis/1"
    FILE = "analysis.json"
    FIX = "rerun `ncmargin analyze RUN --force` to rewrite it"

    run_dir: str = F("the run directory analysed")
    run_id: str = F("the run directory's name")
    meta: dict[str, Any] = F("training-config keys that label the run (dataset, model, weight_decay, seed, ...)")
    onset_epoch: int | None = F("first epoch with 100% train accuracy (log.jsonl and checkpoints), null if none")
    onset_source: str = F("'log.jsonl' or 'checkpoints': which one gave onset_epoch")
    settings: AnalysisSettings = F("analysis settings")
    frozen_complexity: FrozenComplexity | None = F("last-layer R_N at the first terminal checkpoint, or null")
    checkpoints: list[CheckpointAnalysis] = F("one entry per readable checkpoint, sorted by epoch")
    skipped_checkpoints: dict[str, str] = F("checkpoints that could not be read: epoch -> the error, which names "
                                            "the file and the fix; the others are analysed without them", dict)
    reused_checkpoints: int = F("entries reused from the previous analysis.json", 0)
    seconds: float = F("wall time of the analysis", 0.0)

    def terminal_rows(self) -> list[CheckpointAnalysis]:
        """The entries of the terminal phase (epoch >= onset), sorted by epoch."""
        return sorted((r for r in self.checkpoints if r.terminal), key=lambda r: r.epoch)


# ----------------------------------------------------------------------------------------- verdicts


class Verdict(Record):
    """One tested statement of a claim."""

    claim: str = F("claim id ('1a', '1b', '1c', '2', '3', or a registered claim)")
    id: str = F("unique verdict id, e.g. '1c.margin_ratio_trend.digits_wd0'")
    statement: str = F("what the paper claims, in one sentence")
    statistic: str = F("what was measured")
    value: Any = F("the measured statistic (null when undefined)")
    threshold: Any = F("the rule the value is compared with (number or text)")
    verdict: str = F("'pass', 'fail' or 'inconclusive'")
    runs: list[str] = F("run ids the verdict is based on")
    detail: dict[str, Any] = F("claim-specific numbers behind the verdict (p-values, n, trajectories)", dict)

    def _validate(self, where: str, fix: str | None = None) -> None:
        super()._validate(where, fix)
        if self["verdict"] not in VERDICT_VALUES:
            from .record import SchemaError

            raise SchemaError(f"{where}: verdict {self['verdict']!r} is not one of {VERDICT_VALUES}")


class Verdicts(Record):
    """OUT/verdicts.json: every verdict of one `ncmargin verify` and how it was obtained."""

    SCHEMA = "ncmargin.verdicts/1"
    FILE = "verdicts.json"
    FIX = "rerun `ncmargin verify`"

    preset: str = F("preset name")
    created: str = F("ISO time of writing (UTC)")
    ncmargin_version: str = F("package version")
    verdicts: list[Verdict] = F("the verdicts; a claim step that raised gives '<claim>.error' (inconclusive)")
    claims: list[str] = F("claim ids evaluated", list)
    device: str | None = F("--device", None)
    jobs: int | None = F("training processes", None)
    timings: dict[str, float] = F("seconds per step: train_s, analyze_<run>_s, claim_<id>_s, figures_s, total_s",
                                  dict)
    runs: dict[str, str] = F("run name -> run directory", dict)
    trained: list[str] = F("runs trained by this call", list)
    resumed: list[str] = F("runs resumed by this call", list)
    reused: list[str] = F("complete runs reused without training", list)
    errors: dict[str, str] = F("claim id -> error message of a claim step that raised", dict)
    versions: dict[str, Any] = F("package versions (ncmargin.store.versions)", dict)
    notes: list[str] = F("remarks of the claim steps; a partial `verify --claims` run merged into the previous "
                         "file notes which claims' verdicts it kept and when they were made", list)

    def _validate(self, where: str, fix: str | None = None) -> None:
        super()._validate(where, fix)
        ids = [v["id"] for v in self["verdicts"]]
        dup = sorted({i for i in ids if ids.count(i) > 1})
        if dup:
            from .record import SchemaError

            raise SchemaError(f"{where}: duplicate verdict ids {dup}; every verdict id must be unique")


# ----------------------------------------------------------------------------------------- sweep


class SweepRun(Record):
    """One (alignment, seed) run of a claim-3 sweep."""

    run_dir: str = F("its run directory")
    run_id: str = F("its name, e.g. 'a03_s1'", "")
    alignment: str = F("alignment id")
    seed: int | None = F("training seed (model init and batch order)")
    reached_tpt: bool = F("final train accuracy is 100%")
    onset_epoch: int | None = F("first epoch with 100% train accuracy", None)
    final_epoch: int | None = F("last logged epoch", None)
    checkpoint_epoch: int | None = F("checkpoint the predictors were computed at", None)
    final_train_acc: Num = F("train accuracy at the last epoch", None)
    final_test_acc: Num = F("test accuracy at the last epoch")
    final_train_loss: Num = F("train loss at the last epoch", None)
    final_p_min: Num = F("p_min at the last epoch", None)
    final_normalized_margin: Num = F("normalized margin at the last epoch", None)
    predictors: dict[str, Num] = F("alignment predictors (docs/theory.md §8)", dict)
    reason: str | None = F("why the run is excluded, else null", None)
    status: str | None = F("'complete', 'partial', 'absent' or 'failed' (ncmargin.store.run_status)", None)


class Sweep(Record):
    """sweep/sweep.json: the runs of a claim-3 sweep, their predictors and the statistics."""

    SCHEMA = "ncmargin.sweep/1"
    FILE = "sweep.json"
    FIX = "rerun `ncmargin sweep` (or `ncmargin verify --claims 3`) to rewrite it"

    preset: str | None = F("sweep preset name", None)
    out_dir: str | None = F("the sweep directory", None)
    num_classes: int | None = F("K", None)
    alignment_mode: str | None = F("'perm', 'rotation' or 'both'", None)
    base_rotation_seed: int | None = F("rotation seed shared by the alignments", None)
    alignments: list[dict[str, Any]] = F("alignments: {'id', 'perm', 'rotation_seed', ...}")
    seeds: list[int] = F("training seeds", list)
    base_config: dict[str, Any] | None = F("training config shared by the runs", None)
    data_fixed: dict[str, Any] | None = F("what stays fixed across seeds (the data split)", None)
    runs: list[SweepRun] = F("one entry per planned run")
    excluded: list[dict[str, Any]] = F("runs left out of the statistics, with the reason", list)
    stats: dict[str, Any] = F("statistics (docs/theory.md §10, §13): table, anova, permutation, verdict, "
                              "power (an AlignmentPower), predictor_correlations, ...", dict)
    concentration: dict[str, Any] | None = F("concentration check: {'fresh': [...], 'trained': [...], ...}", None)
    timings: dict[str, Any] = F("seconds per step", dict)
    run_status: dict[str, list[str]] | None = F("run names by 'trained', 'resumed', 'reused', 'failed'", None)


# ----------------------------------------------------------------------------------------- claims 1a, 1b


class FixedFeatureExperiment(Record):
    """One claim-1a trajectory: GD on the CE over W with fixed features, against the exact SVM W*."""

    name: str = F("'synthetic' or '<run>_final'")
    N: int = F("number of samples")
    d: int = F("feature dimension (+1 with the bias as a constant feature)")
    K: int = F("number of classes")
    bias_as_constant_feature: bool = F("whether a constant feature 1 carries the bias (docs/theory.md §3)")
    svm: dict[str, Any] = F("the SVM W*: objective, margin, status, duality_gap, max_violation, n_support")
    schedule: str = F("step-size schedule: 'normalized' or 'constant'")
    steps: int = F("GD steps")
    lr: Num = F("step size (null: the schedule's default)")
    fit_inverse_log: dict[str, Any] = F("fit angle ≈ a + c/log t: {'a', 'c', 'r2', 'c_positive', 'n'} or {'error'}")
    records: list[dict[str, Any]] = F("log-spaced records: step, loss, p_min, normalized_margin, angle_deg, "
                                      "margin_ratio, norm_W, lr, seconds (angle/ratio null at step 0, W = 0)")
    runs: list[str] = F("runs whose features were used", list)
    seconds: Num = F("wall time", None)
    source: str | None = F("real features: where they came from", None)
    epoch: int | None = F("real features: checkpoint epoch", None)
    per_class_subsample: int | None = F("real features: samples per class kept (null: all)", None)


class Claim1a(Record):
    """OUT/claim1a/fixed_features.json: claim 1a, CE -> SVM on fixed features (ncmargin.empirical.fixed_features)."""

    SCHEMA = "ncmargin.claim1a/1"
    FILE = "fixed_features.json"
    FIX = "rerun `ncmargin verify --claims 1a` to rewrite it"

    settings: dict[str, Any] = F("the preset's claim1a settings", dict)
    experiments: list[FixedFeatureExperiment] = F("one entry per trajectory")


class Claim1b(Record):
    """OUT/claim1b/ufm.json: claim 1b, UFM gradient dynamics against the certified nuclear-norm optimum."""

    SCHEMA = "ncmargin.claim1b/1"
    FILE = "ufm.json"
    FIX = "rerun `ncmargin verify --claims 1b` to rewrite it"

    settings: dict[str, Any] = F("the preset's claim1b settings", dict)
    K: int = F("classes")
    n: int = F("samples per class")
    d: int | None = F("feature dimension")
    nuclear_norm_objective: float = F("‖Z*‖_* certified by ncmargin.solvers.ufm_svm")
    normalized_margin_optimum: Num = F("1/‖Z*‖_*, the optimum of p_min/(½(‖W‖²+‖H‖²)) (docs/theory.md §3)", None)
    closed_form_objective: Num = F("(K−1)·sqrt(n), the balanced closed form", None)
    certificate: dict[str, Any] = F("scalar entries of the solver certificate (duality_gap, max_violation, ...)",
                                    dict)
    seconds: Num = F("wall time", None)
    records: list[dict[str, Any]] = F("log-spaced records of ncmargin.empirical.ufm: step, loss, p_min, "
                                      "normalized_margin, normalized_margin_optimal, sandwich bounds, norms, lr, "
                                      "NC metrics, seconds")


# ----------------------------------------------------------------------------------------- figures


class FigureEntry(Record):
    """One drawn figure: its files relative to the index's directory, and its caption."""

    name: str = F("figure name (ncmargin.figures.FIGURE_NAMES)")
    png: str = F("PNG file")
    pdf: str | None = F("PDF file, or null")
    csv: str | None = F("CSV with the plotted numbers, or null")
    caption: str = F("caption (also used by report.md)")


class FiguresIndex(Record):
    """OUT/figures.json: what `ncmargin figures` drew, so a later report can show it without redrawing."""

    SCHEMA = "ncmargin.figures/1"
    FILE = "figures.json"
    FIX = "rerun `ncmargin figures`"

    figures: list[FigureEntry] = F("the figures drawn")
    skipped: list[str] = F("figures not drawn, each with its reason", list)


# ------------------------------------------------------------------------- power and resolution (issue 14)


class AlignmentPower(Record):
    """The claim-3 verdict with its power (ncmargin.theory.alignment_effect, docs/theory.md §13), in
    ``sweep.json["stats"]["power"]`` and in ``detail["power"]`` of ``3.alignment_effect``; spreads in test
    accuracy points."""

    verdict: str = F("'effect', 'no_effect' or 'inconclusive' (mapped to pass, fail, inconclusive)")
    reason: str = F("why, with the MDE when inconclusive")
    design: list[int] = F("[A, S]: alignments x seeds of the complete table")
    alpha: float = F("level of every test")
    power: float = F("target power of the MDE")
    sesoi: float = F("smallest effect of interest: SD sigma_alpha of the alignment effects (points)")
    p_anova: Num = F("additive two-way ANOVA p of alignment (statsmodels)")
    p_anova_seed: Num = F("the same for seed")
    F_alignment: Num = F("F statistic of alignment")
    df: list[int] = F("[A-1, (A-1)(S-1)]")
    p_permutation: Num = F("within-seed permutation p (scipy.stats.permutation_test)")
    permutation_method: str = F("exact enumeration or n random permutations")
    omega2_alignment: Num = F("omega^2 of alignment")
    omega2_seed: Num = F("omega^2 of seed")
    sigma: Num = F("residual SD sqrt(MS_E), points")
    effect_sd: Num = F("moment estimate of sigma_alpha, points")
    alignment_means: list[Num] = F("mean test accuracy of each alignment, points")
    range_of_means: Num = F("max - min of the alignment means, points")
    mde: Num = F("minimum detectable sigma_alpha at alpha and power, points")
    mde_f: Num = F("the MDE as Cohen's f")
    mde_omega2: Num = F("the MDE as partial omega^2 = f^2/(1+f^2)")
    mde_range_two: Num = F("max - min range at the MDE if two alignments differ: sqrt(2A) mde")
    mde_range_half: Num = F("max - min range at the MDE, half the alignments up, half down: 2 mde")
    equivalence_p: Num = F("p of the equivalence test H0: sigma_alpha >= sesoi")
    equivalence_lambda: Num = F("noncentrality A S sesoi^2/sigma^2 at the equivalence boundary")
    power_at_sesoi: Num = F("power of the F test for sigma_alpha = sesoi")
    n_perm: int = F("permutations requested")


class SeriesResolution(Record):
    """A test-accuracy series against the test-set resolution (ncmargin.theory.series_resolution,
    docs/theory.md §14): ``detail["resolution"]`` of the claim-1c and claim-2 trend verdicts."""

    n: int = F("points in the series")
    n_distinct: int = F("values more than half an image apart")
    resolution: float = F("1/N_test")
    n_test: int = F("N_test")
    change: Num = F("last - first (fraction)")
    change_images: int = F("the change in test images")
    range: Num = F("max - min (fraction)")
    range_images: int = F("the range in test images")
    on_grid: bool = F("every value is a multiple of 1/N_test")
    few_images: bool = F("range_images <= 2: a trend carried by one or two images")


class ErrorChange(Record):
    """Change of the test error over the terminal phase against resampling noise (ncmargin.theory.
    bootstrap_error_change, docs/theory.md §14): ``detail["test_error_change"]`` of the claim-2 verdicts."""

    start: int = F("index of the first checkpoint in the per-image correctness matrix")
    end: int = F("index of the last")
    n_test: int = F("N_test")
    error_start: float = F("test error at the start")
    error_end: float = F("test error at the end")
    change: float = F("error_end - error_start")
    change_images: int = F("the change in images (to_wrong - to_right)")
    ci_low: Num = F("paired percentile bootstrap interval over test images, low")
    ci_high: Num = F("the same, high")
    level: float = F("confidence level")
    n_boot: int = F("bootstrap resamples")
    seed: int | None = F("bootstrap seed", None)
    to_wrong: int = F("images right at the start and wrong at the end")
    to_right: int = F("images wrong at the start and right at the end")
    discordant: int = F("to_wrong + to_right")
    p_mcnemar: Num = F("exact McNemar p of the same 2x2 table")
    exceeds_noise: bool = F("interval excludes 0 and >= 3 discordant images")
    verdict: str = F("'increase', 'decrease' or 'inconclusive'")
    reason: str = F("why")
    resolution: float = F("1/N_test")
    checkpoints: list[int] = F("epochs of the terminal-phase checkpoints read (first, ..., last)", list)


# ----------------------------------------------------------------------------------------- docs

RESULT_RECORDS = (Analysis, Verdicts, Sweep, Claim1a, Claim1b, FiguresIndex)
# nested records inside verdict details and sweep statistics (checked when written)
DETAIL_RECORDS = (AlignmentPower, SeriesResolution, ErrorChange)


def results_markdown() -> str:
    """The generated part of docs/results.md: one section per result file, then the detail records."""
    return "\n".join([describe(c) for c in RESULT_RECORDS] + [describe(c) for c in DETAIL_RECORDS])

