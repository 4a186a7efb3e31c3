"""The zoo's GAN plugin: registers `gan` (a DCGAN) and `gan-mlp` (2-D points), and the tasks they
learn, `image-generation` and `toy-2d`. Imports no torch (specs name code lazily)."""

from zoo_core import ModelSpec, TaskSpec, hookimpl

_PAPER = (
    "Radford, Metz & Chintala, Unsupervised Representation Learning with Deep Convolutional "
    "Generative Adversarial Networks (2015)"
)
# Adam with beta1 = 0.5 and no weight decay, as the DCGAN paper trains; no gradient clipping.
_ADAM = {"beta1": 0.5, "beta2": 0.999, "weight_decay": 0.0, "grad_clip": 0.0, "warmup": 0}


@hookimpl
def register_tasks(register):
    register(
        TaskSpec(
            "image-generation",
            "zoo_gan.tasks:ImageGeneration",
            "generate images like a folder's (default: generated coloured shapes), as a GAN does",
        )
    )
    register(
        TaskSpec(
            "toy-2d",
            "zoo_gan.tasks:Toy2D",
            "generate 2-D points like a ring of 8 Gaussians; counts the modes covered",
        )
    )


@hookimpl
def register_models(register):
    register(
        ModelSpec(
            name="gan",
            model="zoo_gan.model:DCGAN",
            tasks=("image-generation",),
            family="gan",
            summary="DCGAN for 32x32 images, class-conditional on labelled data; ~3 minutes on the shapes",
            paper=_PAPER,
            # A generator twice as wide as the discriminator (32 feature maps at 16x16, 16 in
            # the discriminator's first layer), small batches and a much higher learning rate
            # than the paper's 2e-4: as much as a CPU gives in about three minutes. The
            # discriminator learns at half the generator's rate, sees real and fake images
            # shifted by up to 4 pixels (DiffAugment's translation), and the generator pays a
            # mode-seeking term. Chosen by measurements on the shapes (the main README).
            defaults={"image_size": 32, "latent_dim": 64, "width": 32, "d_width": 16},
            train_defaults={
                **_ADAM,
                "steps": 5500,
                "batch_size": 32,
                "lr": 3e-3,
                "min_lr_ratio": 1.0,  # a constant rate: its decay drew duller samples here
                "d_lr_ratio": 0.5,
                "augment": "translation",
                "diversity_weight": 1.0,
            },
        )
    )
    register(
        ModelSpec(
            name="gan-mlp",
            model="zoo_gan.model:MLPGAN",
            tasks=("toy-2d",),
            family="gan",
            summary="MLP GAN for 2-D points (default: a ring of 8 Gaussians), trains in seconds",
            paper="Goodfellow et al., Generative Adversarial Nets (2014)",
            # beta1 = 0 (no momentum): with 0.5 the generator tends to collapse onto one mode.
            train_defaults={
                **_ADAM,
                "beta1": 0.0,
                "beta2": 0.9,
                "steps": 4000,
                "batch_size": 256,
                "lr": 5e-4,
            },
        )
    )
