<?php

declare(strict_types=1);

namespace Fastrr\Jobs;

interface OptionsAwareInterface
{
    public function getOptions(): OptionsInterface;

    public function withOptions(OptionsInterface $options): self;
}
