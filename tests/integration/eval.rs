//! Retrieval quality of the trained fixture model on 500 held-out scenes, measured by clipsight
//! (`clipsight eval`) and by the Python reference side by side.

use crate::common::*;

#[test]
fn held_out_retrieval_meets_the_targets_and_matches_the_python_reference() {
    let tmp = tempfile::tempdir().unwrap();
    let eval_dir = tmp.path().join("eval");
    scenes(&eval_dir, 500, 1_000_000);
    let ours = json_of(clipsight(&tmp.path().join("data")).args(["--json", "eval"]).arg(&eval_dir));
    let reference: serde_json::Value = serde_json::from_str(&run_python(&[
        "tools/train_tiny_clip/evaluate.py",
        "--model",
        fixture_model().to_str().unwrap(),
        "--eval",
        eval_dir.to_str().unwrap(),
        "--json",
    ]))
    .unwrap();
    eprintln!("clipsight: {ours}\nreference: {reference}");
    assert_eq!(ours["images"], 500);
    let metric = |v: &serde_json::Value, path: &[&str]| path.iter().fold(v, |v, k| &v[*k]).as_f64().unwrap_or(f64::NAN);
    for path in [
        &["t2i", "r1"][..],
        &["t2i", "r5"],
        &["t2i", "r10"],
        &["i2t", "r1"],
        &["i2t", "r5"],
        &["i2t", "r10"],
        &["zero_shot", "colour"],
        &["zero_shot", "shape"],
    ] {
        let (a, b) = (metric(&ours, path), metric(&reference, path));
        assert!((a - b).abs() <= 0.005, "{path:?}: clipsight {a} vs reference {b}");
    }
    assert!(metric(&ours, &["t2i", "r5"]) >= 0.6, "text→image recall@5 {}", ours["t2i"]["r5"]);
    assert!(metric(&ours, &["zero_shot", "shape"]) >= 0.9, "shape zero-shot {}", ours["zero_shot"]["shape"]);
}

/// `model quantize --eval DIR` reports what decides whether to use the int8 copy: retrieval
/// recall and zero-shot accuracy of both models on a labelled folder. The fp32 figures are
/// `clipsight eval`'s, and on the fixture's held-out scenes int8 loses at most 0.05 anywhere.
#[test]
fn quantize_reports_the_retrieval_quality_of_the_int8_copy_against_fp32() {
    let tmp = tempfile::tempdir().unwrap();
    let eval_dir = tmp.path().join("eval");
    scenes(&eval_dir, 200, 1_000_000);
    let data = tmp.path().join("data");
    let report = json_of(clipsight(&data).args(["--json", "model", "quantize"]).arg(tmp.path().join("int8")).arg("--eval").arg(&eval_dir));
    let alone = json_of(clipsight(&data).args(["--json", "eval"]).arg(&eval_dir));
    let (fp32, int8) = (&report["eval"]["fp32"], &report["eval"]["int8"]);
    eprintln!("fp32: {fp32}\nint8: {int8}");
    assert_eq!(fp32, &alone, "the fp32 figures are clipsight eval's");
    assert_eq!(int8["images"], 200);
    let metric = |v: &serde_json::Value, path: &[&str]| path.iter().fold(v, |v, k| &v[*k]).as_f64().unwrap();
    for path in [&["t2i", "r1"][..], &["t2i", "r5"], &["i2t", "r1"], &["i2t", "r5"], &["zero_shot", "colour"], &["zero_shot", "shape"]] {
        let (a, b) = (metric(fp32, path), metric(int8, path));
        assert!(b >= a - 0.05, "{path:?}: int8 {b} vs fp32 {a}");
    }
}
