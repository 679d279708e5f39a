//! The LeNet-sized network and its training loop, on either backend: the example's run and
//! the test's short version share it.

use ndarray::{Array1, Axis};
use wgconv::nn::{
    init, softmax_cross_entropy, Backend, Conv2d, MaxPool2d, Sequential, Sgd, Tensor,
};
use wgconv::{Activation, Conv2dParams, Layout, Padding, Pool2dParams};

use crate::digits::{Digits, CLASSES};

/// Everything that decides a run: the same config gives the same losses on every backend (up
/// to rounding).
#[derive(Clone, Debug)]
pub struct Config {
    /// Seeds the weights and the order of the training images.
    pub seed: u64,
    pub epochs: usize,
    pub batch: usize,
    /// Output channels of the two conv layers.
    pub widths: [usize; 2],
    /// The peak learning rate (of the first epoch) and the momentum; see
    /// [`Trainer::learning_rate`].
    pub sgd: Sgd,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            seed: 1,
            epochs: 12,
            batch: 32,
            widths: [32, 64],
            sgd: Sgd {
                learning_rate: 0.05,
                momentum: 0.9,
                weight_decay: 1e-4,
            },
        }
    }
}

/// conv 3x3 (1 -> a) + ReLU, max pool 2; conv 3x3 (a -> b) + ReLU, max pool 2; dense
/// (b x 2 x 2 -> 10), for `widths` `[a, b]`. Weights He-uniform from `rng`, biases zero.
pub fn lenet(
    backend: &Backend,
    widths: [usize; 2],
    rng: &mut init::Rng,
) -> wgconv::Result<Sequential> {
    let [a, b] = widths;
    let same = Conv2dParams::default().with_padding(Padding::Same);
    let pool = Pool2dParams::new(2, 2);
    let mut conv = |shape: [usize; 4], params: Conv2dParams, activation| {
        let weight = init::kaiming_uniform(rng, shape);
        Conv2d::new(
            backend,
            weight.view(),
            Array1::zeros(shape[0]).view(),
            params,
            activation,
        )
    };
    Ok(Sequential::new(vec![
        Box::new(conv([a, 1, 3, 3], same, Activation::Relu)?),
        Box::new(MaxPool2d::new(pool)),
        Box::new(conv([b, a, 3, 3], same, Activation::Relu)?),
        Box::new(MaxPool2d::new(pool)),
        Box::new(conv(
            [CLASSES, b, 2, 2],
            Conv2dParams::default(),
            Activation::None,
        )?),
    ]))
}

/// One training step's outcome.
#[derive(Clone, Copy, Debug)]
pub struct Step {
    pub loss: f64,
    pub correct: usize,
    pub samples: usize,
}

/// A network, its optimizer and its data order on one backend.
pub struct Trainer {
    pub backend: Backend,
    net: Sequential,
    config: Config,
    order_rng: init::Rng,
    /// This epoch's images, shuffled and uploaded once; batches are taken from it in place.
    epoch: Option<(Tensor, Vec<usize>)>,
    /// Epochs started so far.
    epochs_started: usize,
    next: usize,
}

impl Trainer {
    pub fn new(backend: Backend, config: Config) -> wgconv::Result<Self> {
        let mut rng = init::Rng::new(config.seed);
        let net = lenet(&backend, config.widths, &mut rng)?;
        Ok(Self {
            backend,
            net,
            order_rng: init::Rng::new(config.seed ^ 0x5eed),
            config,
            epoch: None,
            epochs_started: 0,
            next: 0,
        })
    }

    pub fn steps_per_epoch(&self, train: &Digits) -> usize {
        train.len().div_ceil(self.config.batch)
    }

    /// The learning rate of epoch `epoch` (from 0): cosine annealing from the configured rate
    /// towards zero over the configured epochs, which settles the last epochs' noisy steps.
    pub fn learning_rate(&self, epoch: usize) -> f32 {
        let progress = epoch as f64 / self.config.epochs.max(1) as f64;
        let scale = 0.5 * (1.0 + (std::f64::consts::PI * progress.min(1.0)).cos());
        (f64::from(self.config.sgd.learning_rate) * scale) as f32
    }

    /// Shuffles the training images and uploads them for the epoch.
    pub fn start_epoch(&mut self, train: &Digits) -> wgconv::Result<()> {
        let mut order: Vec<usize> = (0..train.len()).collect();
        self.order_rng.shuffle(&mut order);
        let shuffled = train.select(&order);
        let images = self.backend.upload(shuffled.images.view(), Layout::Nchw)?;
        self.epoch = Some((images, shuffled.labels));
        self.epochs_started += 1;
        self.next = 0;
        Ok(())
    }

    /// The next batch's forward pass, loss, backward pass and SGD step; `None` at the end of
    /// the epoch.
    pub fn step(&mut self) -> wgconv::Result<Option<Step>> {
        let Some((images, labels)) = &self.epoch else {
            return Ok(None);
        };
        if self.next >= labels.len() {
            return Ok(None);
        }
        let range = self.next..(self.next + self.config.batch).min(labels.len());
        self.next = range.end;
        let x = images.samples(range.clone())?;
        let logits = self.net.forward(&x, true)?;
        let loss = softmax_cross_entropy(&self.backend, &logits, &labels[range.clone()])?;
        self.net.backward(&loss.grad)?;
        let sgd = Sgd {
            learning_rate: self.learning_rate(self.epochs_started - 1),
            ..self.config.sgd
        };
        sgd.step(&self.backend, self.net.params())?;
        Ok(Some(Step {
            loss: loss.loss,
            correct: loss.correct,
            samples: range.len(),
        }))
    }

    /// The mean loss and the correctly classified images of `data`, in inference mode.
    pub fn evaluate(&mut self, data: &Digits) -> wgconv::Result<Step> {
        let mut total = Step {
            loss: 0.0,
            correct: 0,
            samples: 0,
        };
        // Batches of 512 keep memory flat on any backend.
        for (images, labels) in data
            .images
            .axis_chunks_iter(Axis(0), 512)
            .zip(data.labels.chunks(512))
        {
            let x = self.backend.upload(images, Layout::Nchw)?;
            let logits = self.net.forward(&x, false)?;
            let loss = softmax_cross_entropy(&self.backend, &logits, labels)?;
            total.loss += loss.loss * labels.len() as f64;
            total.correct += loss.correct;
            total.samples += labels.len();
        }
        total.loss /= total.samples.max(1) as f64;
        Ok(total)
    }
}
