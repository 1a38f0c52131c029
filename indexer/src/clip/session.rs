//! ONNX sessions for the two towers, with their input contracts read from the model itself
//! (names, element types, layouts, fixed or dynamic batch) rather than assumed.

use std::path::Path;
use std::sync::Once;

use ndarray::{ArrayView4, ArrayViewD, Axis};
use ort::ep::{ExecutionProvider, CUDA};
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::{DynTensor, Tensor, TensorElementType, TensorRef, ValueType};

use super::preprocess::{PreparedImage, PreprocessConfig};
use super::runtime::{self, Device, RuntimeOptions};
use super::tokenize::Tokens;
use super::ClipError;
use crate::embedding::Embedding;

/// What the image tower takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageLayout {
    /// float32 [N, 3, H, W], normalised by us with the preprocess config's mean/std.
    Float32Nchw,
    /// uint8 [N, H, W, 3], normalisation folded into the graph.
    Uint8Nhwc,
}

/// The element type of the text tower's ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdType {
    /// int32 ids (Immich's exports).
    Int32,
    /// int64 ids (plain torch exports).
    Int64,
}

/// The device a session actually runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActiveDevice {
    /// ONNX Runtime's CPU provider.
    Cpu,
    /// ONNX Runtime's CUDA provider.
    Cuda,
}

impl ActiveDevice {
    /// "cpu" or "cuda", as `--device` spells them.
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Cuda => "cuda",
        }
    }
}

/// The image tower.
pub(crate) struct ImageEncoder {
    session: Session,
    input: String,
    layout: ImageLayout,
    fixed_batch: Option<usize>,
    pub(crate) device: ActiveDevice,
    /// The input batch, kept between calls: a fresh 154 MB float32 batch of 256 images is
    /// page-faulted in on every call (measured on an H200: batch 256 ran at 0.4× batch 32).
    input_f32: Vec<f32>,
    /// The same for uint8 towers.
    input_u8: Vec<u8>,
}

/// The text tower.
pub(crate) struct TextEncoder {
    session: Session,
    ids: TextInput,
    mask: Option<TextInput>,
    fixed_batch: Option<usize>,
}

/// One input of a text tower: its name and element type.
struct TextInput {
    name: String,
    ty: IdType,
}

fn model_error(path: &Path, message: impl Into<String>) -> ClipError {
    ClipError::Model { path: path.to_path_buf(), message: message.into() }
}

fn ort_error(path: &Path, e: impl std::fmt::Display) -> ClipError {
    ClipError::Runtime(format!("{}: {e}", path.display()))
}

static DEVICE_LOG: Once = Once::new();

/// Builds a session with deliberate settings: all graph optimisations, the requested number of
/// intra-op threads (not spinning), one inter-op thread (the towers are sequential graphs), and
/// CUDA when asked for and usable.
fn build_session(path: &Path, opts: &RuntimeOptions) -> Result<(Session, ActiveDevice), ClipError> {
    let env = runtime::environment()?;
    let base = || -> Result<_, ClipError> {
        Session::builder(env)
            .map_err(|e| ort_error(path, e))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| ort_error(path, ort::Error::<()>::from(e)))?
            .with_intra_threads(opts.threads())
            .map_err(|e| ort_error(path, ort::Error::<()>::from(e)))?
            .with_inter_threads(1)
            .map_err(|e| ort_error(path, ort::Error::<()>::from(e)))?
            // Idle intra-op threads sleep instead of spinning: while indexing, the cores they
            // would burn decode the next photos (measured with `clipsight bench index`).
            .with_intra_op_spinning(false)
            .map_err(|e| ort_error(path, ort::Error::<()>::from(e)))
    };
    let want_cuda = match opts.device {
        Device::Cpu => false,
        Device::Cuda => true,
        Device::Auto => CUDA::is_available().unwrap_or(false),
    };
    if want_cuda {
        runtime::preload_cuda_libraries();
        let attempt = base()?
            .with_execution_providers([CUDA::default().build().error_on_failure()])
            .map_err(|e| ort_error(path, ort::Error::<()>::from(e)))
            .and_then(|mut b| b.commit_from_file(path).map_err(|e| ort_error(path, e)));
        match attempt {
            Ok(session) => {
                DEVICE_LOG.call_once(|| tracing::info!("inference device: CUDA"));
                release_freed_heap();
                return Ok((session, ActiveDevice::Cuda));
            }
            Err(e) => DEVICE_LOG.call_once(|| {
                tracing::warn!("CUDA is unavailable ({}); falling back to CPU", cuda_failure_reason(&e.to_string()))
            }),
        }
    }
    let session = base()?.commit_from_file(path).map_err(|e| ort_error(path, e))?;
    release_freed_heap();
    DEVICE_LOG.call_once(|| tracing::info!("inference device: CPU ({} threads)", opts.threads()));
    Ok((session, ActiveDevice::Cpu))
}

/// Returns to the system the heap that creating (or dropping) a session freed. Loading a graph parses the whole
/// ONNX file and transforms it (optimisation, pre-packed weights) before the session keeps only its
/// weights; glibc keeps the freed pages, so a process held ~270 MB more than its sessions need with
/// a ViT-B/32-size model (902 against 636 MiB RSS with both towers loaded, measured with ONNX
/// Runtime 1.32 from Python; README, *Status*).
pub fn release_freed_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages; it takes no pointer and is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The part of ONNX Runtime's error that says why CUDA failed, without the C++ source location
/// and signature it starts with: "CUDA failure 100: no CUDA-capable device is detected" or
/// "Failed to load library …: libcublasLt.so.13: cannot open shared object file …".
fn cuda_failure_reason(message: &str) -> &str {
    let reason = match (message.find("CUDA failure"), message.rfind("FAIL : ")) {
        (Some(at), _) => message[at..].split(" ; ").next().unwrap_or_default(),
        (None, Some(at)) => &message[at + "FAIL : ".len()..],
        (None, None) => message,
    };
    reason.trim()
}

/// The single input of a tower: its name, element type and shape (-1 for dynamic dims).
fn single_input(session: &Session, path: &Path) -> Result<(String, TensorElementType, Vec<i64>), ClipError> {
    let inputs = session.inputs();
    if inputs.len() != 1 {
        let names: Vec<&str> = inputs.iter().map(|i| i.name()).collect();
        return Err(model_error(path, format!("expected one input, found {names:?}; is this a CLIP tower export?")));
    }
    match inputs[0].dtype() {
        ValueType::Tensor { ty, shape, .. } => Ok((inputs[0].name().to_string(), *ty, shape.to_vec())),
        other => Err(model_error(path, format!("input {} is {other}, not a tensor", inputs[0].name()))),
    }
}

fn fixed_batch(shape: &[i64]) -> Option<usize> {
    shape.first().copied().filter(|d| *d > 0).map(|d| d as usize)
}

/// Last dimension of output 0 if the graph fixes it.
pub(crate) fn output_dim(session: &Session) -> Option<usize> {
    match session.outputs().first()?.dtype() {
        ValueType::Tensor { shape, .. } => shape.last().copied().filter(|d| *d > 0).map(|d| d as usize),
        _ => None,
    }
}

/// Rows of output 0, L2-normalised.
fn rows(view: ArrayViewD<'_, f32>, path: &Path) -> Result<Vec<Embedding>, ClipError> {
    let view = view
        .into_dimensionality::<ndarray::Ix2>()
        .map_err(|e| model_error(path, format!("output 0 is not [batch, dim]: {e}")))?;
    Ok(view.axis_iter(Axis(0)).map(|r| Embedding::normalized(r.to_vec())).collect())
}

impl ImageEncoder {
    pub(crate) fn load(path: &Path, opts: &RuntimeOptions, pre: &PreprocessConfig) -> Result<Self, ClipError> {
        let (session, device) = build_session(path, opts)?;
        let (input, ty, shape) = single_input(&session, path)?;
        let (h, w) = (pre.size.0 as i64, pre.size.1 as i64);
        let layout = match (ty, shape.as_slice()) {
            (TensorElementType::Float32, [_, c, sh, sw]) if *c == 3 => {
                check_spatial(path, (*sh, *sw), (h, w))?;
                ImageLayout::Float32Nchw
            }
            (TensorElementType::Uint8, [_, sh, sw, c]) if *c == 3 => {
                check_spatial(path, (*sh, *sw), (h, w))?;
                ImageLayout::Uint8Nhwc
            }
            _ => {
                return Err(model_error(
                    path,
                    format!(
                        "input {input:?} is {ty:?} {shape:?}; expected float32 [N,3,{h},{w}] or uint8 [N,{h},{w},3]"
                    ),
                ))
            }
        };
        Ok(Self { fixed_batch: fixed_batch(&shape), session, input, layout, device, input_f32: Vec::new(), input_u8: Vec::new() })
    }

    pub(crate) fn layout(&self) -> ImageLayout {
        self.layout
    }

    pub(crate) fn output_dim(&self) -> Option<usize> {
        output_dim(&self.session)
    }

    /// Encodes prepared images, in chunks the graph accepts.
    pub(crate) fn encode(&mut self, pre: &PreprocessConfig, images: &[PreparedImage], path: &Path) -> Result<Vec<Embedding>, ClipError> {
        let chunk = self.fixed_batch.unwrap_or(images.len().max(1));
        let mut out = Vec::with_capacity(images.len());
        for part in images.chunks(chunk) {
            out.extend(self.run_batch(pre, part, path)?);
        }
        Ok(out)
    }

    fn run_batch(&mut self, pre: &PreprocessConfig, images: &[PreparedImage], path: &Path) -> Result<Vec<Embedding>, ClipError> {
        let (h, w) = (pre.size.0 as usize, pre.size.1 as usize);
        let (n, per_image) = (images.len(), 3 * h * w);
        match self.layout {
            ImageLayout::Float32Nchw => {
                let x = reuse(&mut self.input_f32, n * per_image);
                fill_parallel(x, images, |slot, img| pre.normalize_into(img, slot));
                let x = ArrayView4::from_shape((n, 3, h, w), &*x).expect("buffer sized to the batch");
                run(&mut self.session, &self.input, x, path)
            }
            ImageLayout::Uint8Nhwc => {
                let x = reuse(&mut self.input_u8, n * per_image);
                fill_parallel(x, images, |slot, img| slot.copy_from_slice(&img.pixels));
                let x = ArrayView4::from_shape((n, h, w, 3), &*x).expect("buffer sized to the batch");
                run(&mut self.session, &self.input, x, path)
            }
        }
    }
}

/// Lays `images` into `batch` (equal slots, one per image) on scoped threads, one per core: at
/// GPU speed a single thread doing it is the bottleneck. Not on rayon's pool: the indexing
/// pipeline's decoders run there and can all be blocked on a full channel until this batch is
/// encoded, which would deadlock.
fn fill_parallel<T: Send>(batch: &mut [T], images: &[PreparedImage], fill: impl Fn(&mut [T], &PreparedImage) + Sync) {
    if images.is_empty() {
        return;
    }
    let per_image = batch.len() / images.len();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(images.len());
    let per_thread = images.len().div_ceil(threads);
    let fill_part = |slots: &mut [T], part: &[PreparedImage]| {
        for (slot, img) in slots.chunks_mut(per_image).zip(part) {
            fill(slot, img);
        }
    };
    if threads == 1 {
        return fill_part(batch, images);
    }
    std::thread::scope(|scope| {
        for (slots, part) in batch.chunks_mut(per_thread * per_image).zip(images.chunks(per_thread)) {
            scope.spawn(|| fill_part(slots, part));
        }
    });
}

/// The first `len` elements of `buf`, grown (never shrunk) to hold them.
fn reuse<T: Clone + Default>(buf: &mut Vec<T>, len: usize) -> &mut [T] {
    if buf.len() < len {
        buf.resize(len, T::default());
    }
    &mut buf[..len]
}

fn check_spatial(path: &Path, graph: (i64, i64), cfg: (i64, i64)) -> Result<(), ClipError> {
    let ok = |g: i64, c: i64| g <= 0 || g == c;
    if ok(graph.0, cfg.0) && ok(graph.1, cfg.1) {
        Ok(())
    } else {
        Err(model_error(
            path,
            format!(
                "the graph takes {}x{} images but visual/preprocess_cfg.json says {}x{}; fix \"size\" there",
                graph.0, graph.1, cfg.0, cfg.1
            ),
        ))
    }
}

impl TextEncoder {
    /// Loads the text tower and reads what it takes from its graph: token ids (`text`, as
    /// OpenAI/open_clip exports name them, or `input_ids`, as M-CLIP's do) and, when the graph has
    /// one, an `attention_mask`; each int32 or int64, shaped [N, context_length].
    pub(crate) fn load(path: &Path, opts: &RuntimeOptions, context_length: usize) -> Result<Self, ClipError> {
        let (session, _device) = build_session(path, opts)?;
        let (mut ids, mut mask, mut fixed) = (None, None, None);
        for input in session.inputs() {
            let name = input.name().to_string();
            let ValueType::Tensor { ty, shape, .. } = input.dtype() else {
                return Err(model_error(path, format!("input {name:?} is not a tensor")));
            };
            let ty = match ty {
                TensorElementType::Int32 => IdType::Int32,
                TensorElementType::Int64 => IdType::Int64,
                other => return Err(model_error(path, format!("input {name:?} is {other:?}; expected int32 or int64"))),
            };
            match shape.as_ref() {
                [_, l] if *l <= 0 || *l as usize == context_length => {}
                other => {
                    return Err(model_error(
                        path,
                        format!("input {name:?} has shape {other:?}; expected [N, {context_length}] (text_cfg.context_length in config.json)"),
                    ))
                }
            }
            fixed = fixed.or(fixed_batch(shape));
            let slot = match name.as_str() {
                "text" | "input_ids" => &mut ids,
                "attention_mask" => &mut mask,
                _ => {
                    return Err(model_error(
                        path,
                        format!("unexpected input {name:?}; a text tower takes `text` or `input_ids`, and optionally `attention_mask`"),
                    ))
                }
            };
            if slot.replace(TextInput { name: name.clone(), ty }).is_some() {
                return Err(model_error(path, format!("two token-id inputs (`text` and `input_ids`) where one is expected; second: {name:?}")));
            }
        }
        let ids = ids.ok_or_else(|| model_error(path, "no token-id input (`text` or `input_ids`); is this a CLIP text tower export?"))?;
        Ok(Self { fixed_batch: fixed, session, ids, mask })
    }

    pub(crate) fn id_type(&self) -> IdType {
        self.ids.ty
    }

    /// Whether the graph takes an attention mask beside the ids (M-CLIP's exports do).
    pub(crate) fn takes_mask(&self) -> bool {
        self.mask.is_some()
    }

    /// The graph's inputs, as `name:type` (what `model info` prints).
    pub(crate) fn inputs(&self) -> Vec<String> {
        std::iter::once(&self.ids).chain(&self.mask).map(|i| format!("{}:{}", i.name, i.ty.name())).collect()
    }

    pub(crate) fn output_dim(&self) -> Option<usize> {
        output_dim(&self.session)
    }

    /// Encodes tokenised texts, in chunks the graph accepts.
    pub(crate) fn encode(&mut self, texts: &[Tokens], path: &Path) -> Result<Vec<Embedding>, ClipError> {
        let chunk = self.fixed_batch.unwrap_or(texts.len().max(1));
        let mut out = Vec::with_capacity(texts.len());
        for part in texts.chunks(chunk) {
            out.extend(self.run_batch(part, path)?);
        }
        Ok(out)
    }

    fn run_batch(&mut self, texts: &[Tokens], path: &Path) -> Result<Vec<Embedding>, ClipError> {
        let mut inputs = vec![(self.ids.name.clone(), self.ids.tensor(texts.iter().map(|t| &t.ids), path)?)];
        if let Some(mask) = &self.mask {
            inputs.push((mask.name.clone(), mask.tensor(texts.iter().map(|t| &t.mask), path)?));
        }
        let out = self.session.run(inputs).map_err(|e| ort_error(path, e))?;
        rows(out[0].try_extract_array::<f32>().map_err(|e| ort_error(path, e))?, path)
    }
}

impl IdType {
    /// `int32` or `int64`.
    pub fn name(self) -> &'static str {
        match self {
            IdType::Int32 => "int32",
            IdType::Int64 => "int64",
        }
    }
}

impl TextInput {
    /// Rows of equal length as a [rows, length] tensor of this input's type.
    fn tensor<'a>(&self, rows: impl ExactSizeIterator<Item = &'a Vec<u32>>, path: &Path) -> Result<DynTensor, ClipError> {
        let rows: Vec<&Vec<u32>> = rows.collect();
        let shape = vec![rows.len() as i64, rows.first().map_or(0, |r| r.len()) as i64];
        let flat = rows.iter().flat_map(|r| r.iter().copied());
        let tensor = match self.ty {
            IdType::Int32 => Tensor::from_array((shape, flat.map(|v| v as i32).collect::<Vec<_>>())).map(|t| t.upcast()),
            IdType::Int64 => Tensor::from_array((shape, flat.map(i64::from).collect::<Vec<_>>())).map(|t| t.upcast()),
        };
        tensor.map_err(|e| ort_error(path, e))
    }
}

/// Runs a one-input tower on `x` and returns the L2-normalised rows of output 0.
fn run<T, D>(session: &mut Session, input: &str, x: ndarray::ArrayView<'_, T, D>, path: &Path) -> Result<Vec<Embedding>, ClipError>
where
    T: ort::value::PrimitiveTensorElementType + std::fmt::Debug + Clone + 'static,
    D: ndarray::Dimension + 'static,
{
    let t = TensorRef::from_array_view(x).map_err(|e| ort_error(path, e))?;
    let out = session.run(ort::inputs![input => t]).map_err(|e| ort_error(path, e))?;
    rows(out[0].try_extract_array::<f32>().map_err(|e| ort_error(path, e))?, path)
}

#[cfg(test)]
mod tests {
    use super::{cuda_failure_reason, fill_parallel};
    use crate::clip::PreparedImage;
    use std::sync::{Arc, Condvar, Mutex};
    use std::time::Duration;

    fn images(n: usize) -> Vec<PreparedImage> {
        (0..n).map(|i| PreparedImage { width: 2, height: 1, pixels: vec![i as u8; 6] }).collect()
    }

    #[test]
    fn every_image_lands_in_its_own_slot_of_the_batch() {
        for n in [0, 1, 2, 3, 7, 64] {
            let mut batch = vec![u8::MAX; 6 * n];
            fill_parallel(&mut batch, &images(n), |slot, img| slot.copy_from_slice(&img.pixels));
            let expected: Vec<u8> = (0..n).flat_map(|i| [i as u8; 6]).collect();
            assert_eq!(batch, expected, "{n} images");
        }
    }

    #[test]
    fn filling_a_batch_does_not_wait_for_rayons_pool() {
        // The indexing pipeline's decoders can occupy every rayon worker, blocked until the
        // encoder takes their images: the encoder must fill its batch without that pool.
        let gate = Arc::new((Mutex::new((0usize, false)), Condvar::new()));
        let workers = rayon::current_num_threads();
        for _ in 0..workers {
            let gate = Arc::clone(&gate);
            rayon::spawn(move || {
                let (state, cv) = &*gate;
                let mut s = state.lock().unwrap();
                s.0 += 1;
                cv.notify_all();
                while !s.1 {
                    s = cv.wait(s).unwrap();
                }
            });
        }
        let (state, cv) = &*gate;
        drop(cv.wait_while(state.lock().unwrap(), |s| s.0 < workers).unwrap());

        let (done_tx, done_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut batch = vec![0u8; 6 * 16];
            fill_parallel(&mut batch, &images(16), |slot, img| slot.copy_from_slice(&img.pixels));
            let _ = done_tx.send(());
        });
        let filled = done_rx.recv_timeout(Duration::from_secs(30));
        state.lock().unwrap().1 = true;
        cv.notify_all();
        assert!(filled.is_ok(), "the batch was not filled while rayon's workers were busy");
    }

    #[test]
    fn a_cuda_failure_is_reported_by_its_reason_alone() {
        let no_gpu = "m/visual/model.onnx: /onnxruntime_src/onnxruntime/core/providers/cuda/cuda_call.cc:154 \
            std::conditional_t<THRW, void, onnxruntime::common::Status> onnxruntime::CudaCall(ERRTYPE, const char*) \
            [with ERRTYPE = cudaError; bool THRW = true] CUDA failure 100: no CUDA-capable device is detected ; \
            GPU=0 ; hostname=h ; file=cuda_execution_provider.cc ; line=282 ; expr=cudaSetDevice(info_.device_id);\n";
        assert_eq!(cuda_failure_reason(no_gpu), "CUDA failure 100: no CUDA-capable device is detected");
        let no_lib = "m/visual/model.onnx: /onnxruntime_src/onnxruntime/core/session/provider_bridge_ort.cc:2043 \
            onnxruntime::Provider& onnxruntime::ProviderLibrary::Get() [ONNXRuntimeError] : 1 : FAIL : Failed to load \
            library /x/libonnxruntime_providers_cuda.so with error: libcublasLt.so.13: cannot open shared object file\n";
        assert_eq!(
            cuda_failure_reason(no_lib),
            "Failed to load library /x/libonnxruntime_providers_cuda.so with error: libcublasLt.so.13: cannot open shared object file"
        );
        assert_eq!(cuda_failure_reason(" something else \n"), "something else");
    }
}
