<p><?= e(__('messages.hello')) ?>, <?= e($name) ?>! Shared: <?= e($shared_by_request ?? 'none') ?>.</p>
