//! Small building blocks for training a CNN on wgconv's ops: layers, a loss and an optimizer,
//! on the GPU or on the CPU reference, chosen by one [`Backend`] value.
//!
//! On the GPU every activation, gradient and parameter stays in GPU memory; per training step
//! only the logits come back (for the loss, computed on the host in f64) and their gradient goes
//! out. On [`Backend::Cpu`] the same code runs the CPU reference ops, so a training run on both
//! backends with one seed is a step-by-step cross-check (`examples/train_digits.rs`).
//!
//! ```
//! use ndarray::{Array1, Array4};
//! use wgconv::nn::{init, softmax_cross_entropy, Backend, Conv2d, Layer, MaxPool2d, Sequential, Sgd};
//! use wgconv::{Activation, Conv2dParams, Gpu, Layout, Padding, Pool2dParams};
//!
//! fn main() -> wgconv::Result<()> {
//!     let backend = Backend::Gpu(Gpu::new()?); // or Backend::Cpu: the same run on the CPU
//!     let mut rng = init::Rng::new(7);
//!     // 4x4 single-channel images; the class is the quadrant that holds the bright pixel.
//!     let mut images = Array4::<f32>::zeros((32, 1, 4, 4));
//!     let mut labels = Vec::new();
//!     for (i, mut image) in images.outer_iter_mut().enumerate() {
//!         let (h, w) = (rng.below(4), rng.below(4));
//!         image[[0, h, w]] = 1.0;
//!         labels.push(h / 2 * 2 + w / 2);
//!     }
//!     let conv = Conv2dParams::default().with_padding(Padding::Same);
//!     let mut net = Sequential::new(vec![
//!         Box::new(Conv2d::new(&backend, init::kaiming_uniform(&mut rng, [8, 1, 3, 3]).view(),
//!             Array1::zeros(8).view(), conv, Activation::Relu)?),
//!         Box::new(MaxPool2d::new(Pool2dParams::new(2, 2))),
//!         Box::new(Conv2d::dense(&backend, init::kaiming_uniform(&mut rng, [4, 8, 2, 2]).view(),
//!             Array1::zeros(4).view(), Activation::None, Layout::Nchw)?),
//!     ]);
//!     let sgd = Sgd { learning_rate: 0.5, momentum: 0.9, weight_decay: 0.0 };
//!     let x = backend.upload(images.view(), Layout::Nchw)?;
//!     let mut losses = Vec::new();
//!     for _ in 0..30 {
//!         let logits = net.forward(&x, true)?;
//!         let step = softmax_cross_entropy(&backend, &logits, &labels)?;
//!         net.backward(&step.grad)?;
//!         sgd.step(&backend, net.params())?;
//!         losses.push(step.loss);
//!     }
//!     assert!(losses[29] < losses[0] / 4.0, "{losses:?}");
//!     Ok(())
//! }
//! ```

pub mod init;
mod layers;
mod loss;
mod optim;
mod tensor;

pub use layers::{Conv2d, Layer, MaxPool2d, Param, Sequential};
pub use loss::{softmax_cross_entropy, CrossEntropy};
pub use optim::Sgd;
pub use tensor::{Backend, Tensor};
